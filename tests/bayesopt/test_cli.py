from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bayesopt import Float, Optimizer, TrialState
from bayesopt.cli import optimize, run

REPO = Path(__file__).resolve().parents[2]
BRANIN_MIN = 0.397887357729738


def _cli(*overrides: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["HYDRA_FULL_ERROR"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "bayesopt", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _opt_float(cell: str) -> float | None:
    return None if cell == "" else float(cell)


@pytest.fixture(scope="module")
def branin_run(tmp_path_factory) -> Path:
    """One CLI run: branin, 8 trials, 4 of them Sobol."""
    root = tmp_path_factory.mktemp("cli")
    run_dir = root / "run"
    proc = _cli(
        "task=branin",
        "surrogate=gp",
        "acquisition=qlognei",
        "n_trials=8",
        "n_initial=4",
        "seed=0",
        f"hydra.run.dir={run_dir}",
        cwd=root,
    )
    assert "simple regret" in proc.stdout
    return run_dir


def test_cli_writes_every_output(branin_run):
    for name in ("study.db", "trials.csv", "results.json", "convergence.png"):
        assert (branin_run / name).is_file(), name
        assert (branin_run / name).stat().st_size > 0, name
    assert (branin_run / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (branin_run / ".hydra" / "config.yaml").is_file()


def test_cli_results_agree_with_trials_csv(branin_run):
    rows = _read_csv(branin_run / "trials.csv")
    res = json.loads((branin_run / "results.json").read_text())
    assert [int(r["id"]) for r in rows] == list(range(8))
    assert all(r["state"] == "COMPLETE" for r in rows)
    assert {"param_x1", "param_x2", "regret_so_far", "ask_seconds", "source"} <= set(rows[0])
    assert [r["source"] for r in rows[:4]] == ["sobol"] * 4
    assert all(r["source"] == "model" and r["surrogate"] == "gp" for r in rows[4:])

    values = [float(r["value"]) for r in rows]
    assert res["task"] == "branin" and res["surrogate"] == "gp"
    assert res["acquisition"] == "qlognei" and res["seed"] == 0
    assert res["n_trials"] == 8 and res["n_finished"] == 8 and res["n_complete"] == 8
    assert res["fallbacks"] == {
        "n_model_phase": 4,
        "n_fallback": 0,
        "n_rescued": 0,
        "streak": 0,
        "reasons": {},
    }
    assert res["n_initial"] == 4
    assert res["best_value"] == min(values)
    assert res["best_trial_id"] == values.index(min(values))
    best_row = rows[res["best_trial_id"]]
    assert res["best_params"] == {
        "x1": float(best_row["param_x1"]),
        "x2": float(best_row["param_x2"]),
    }
    assert res["simple_regret"] == pytest.approx(min(values) - BRANIN_MIN, abs=1e-12)
    assert res["simple_regret"] >= 0

    curve = res["regret_curve"]
    assert len(curve) == 8
    assert curve == pytest.approx([_opt_float(r["regret_so_far"]) for r in rows], abs=1e-12)
    assert curve == pytest.approx([min(values[: i + 1]) - BRANIN_MIN for i in range(8)], abs=1e-12)
    assert all(b <= a for a, b in zip(curve, curve[1:]))  # best-so-far never gets worse
    assert curve[-1] == res["simple_regret"]

    asks = {int(k): v for k, v in res["ask_seconds"].items()}
    assert sorted(asks) == list(range(8))
    assert all(v > 0 for v in asks.values())
    assert [asks[i] for i in range(8)] == pytest.approx([float(r["ask_seconds"]) for r in rows])
    assert res["total_seconds"] >= sum(asks.values())
    assert res["interrupted"] is False


def test_cli_resumes_a_stored_study_to_the_same_total(branin_run, tmp_path):
    db = branin_run / "study.db"
    proc = _cli(
        f"storage=sqlite:///{db}",
        "n_trials=10",
        "n_initial=4",
        f"hydra.run.dir={tmp_path / 'resumed'}",
        cwd=tmp_path,
    )
    assert "best value" in proc.stdout
    rows = _read_csv(tmp_path / "resumed" / "trials.csv")
    first = _read_csv(branin_run / "trials.csv")
    assert len(rows) == 10
    # The first eight trials are the stored ones, unchanged; only two were asked now.
    assert [(r["id"], r["value"]) for r in rows[:8]] == [(r["id"], r["value"]) for r in first]
    res = json.loads((tmp_path / "resumed" / "results.json").read_text())
    assert res["n_finished"] == 10 and len(res["regret_curve"]) == 10
    assert sorted(int(k) for k in res["ask_seconds"]) == [8, 9]
    assert not (tmp_path / "resumed" / "study.db").exists()  # storage= named another file
    # Running again with the same total asks nothing.
    _cli(
        f"storage=sqlite:///{db}",
        "n_trials=10",
        "n_initial=4",
        f"hydra.run.dir={tmp_path / 'again'}",
        cwd=tmp_path,
    )
    res = json.loads((tmp_path / "again" / "results.json").read_text())
    assert res["n_finished"] == 10 and res["ask_seconds"] == {}


def test_cli_multirun_over_seeds(tmp_path):
    sweep = tmp_path / "sweep"
    _cli("-m", "seed=0,1", "n_trials=3", "n_initial=3", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    results = [json.loads((sweep / str(i) / "results.json").read_text()) for i in (0, 1)]
    assert [r["seed"] for r in results] == [0, 1]
    assert all(r["n_finished"] == 3 for r in results)
    assert results[0]["best_params"] != results[1]["best_params"]  # seeds give other designs
    for i in (0, 1):
        assert (sweep / str(i) / "study.db").is_file()
        assert (sweep / str(i) / "convergence.png").is_file()


def test_cli_help_lists_the_config_groups(tmp_path):
    proc = _cli("--help", cwd=tmp_path)
    from surrogates import available_surrogates

    groups = dict(
        line.split(": ", 1) for line in proc.stdout.splitlines() if line.count(": ") == 1
    )
    assert {"branin", "hartmann6"} <= set(groups["task"].split(", "))
    assert groups["surrogate"].split(", ") == available_surrogates()


# --- in process (no model fits: every trial is from the initial design) ---------------


class _Quadratic:
    """A minimal task: any object with name, space, direction, __call__ (and regret)."""

    name = "quadratic"
    direction = "minimize"
    optimal_value = 0.0

    def __init__(self, fail_when=None):
        self.space = {"x": Float(-1.0, 1.0)}
        self.calls = 0
        self.fail_when = fail_when

    def __call__(self, params):
        self.calls += 1
        if self.fail_when is not None:
            self.fail_when(self.calls)
        return params["x"] ** 2

    def regret(self, value):
        return max(value - self.optimal_value, 0.0)


def test_objective_errors_fail_the_trial_and_the_loop_goes_on():
    def fail_on_2nd(call):
        if call == 2:
            raise RuntimeError("simulation diverged")

    task = _Quadratic(fail_on_2nd)
    opt = Optimizer(task.space, seed=0, n_initial=10)
    asks, interrupted = optimize(opt, task, 5, progress=False)
    assert not interrupted
    states = [t.state for t in opt.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAILED] + [TrialState.COMPLETE] * 3
    assert opt.trials[1].attrs["fail_reason"] == "RuntimeError: simulation diverged"
    assert sorted(asks) == [0, 1, 2, 3, 4]
    for t in opt.trials:
        if t.state is TrialState.COMPLETE:
            assert t.value == pytest.approx(t.params["x"] ** 2, abs=1e-15)


def test_batches_are_asked_together_and_stop_at_the_total():
    task = _Quadratic()
    opt = Optimizer(task.space, seed=1, n_initial=10)
    asks, _ = optimize(opt, task, 5, batch_size=2, progress=False)
    assert len(opt.trials) == 5 and task.calls == 5
    assert asks[0] == asks[1] and asks[2] == asks[3]  # one timing shared by a batch


def test_keyboard_interrupt_stops_cleanly_and_still_writes_outputs(tmp_path):
    def interrupt_on_3rd(call):
        if call == 3:
            raise KeyboardInterrupt

    task = _Quadratic(interrupt_on_3rd)
    cfg = OmegaConf.create(
        {
            "surrogate": {"name": "gp"},
            "acquisition": {"name": "qlognei"},
            "n_trials": 6,
            "n_initial": 6,
            "seed": 0,
            "storage": None,
            "study": None,
            "batch_size": 1,
        }
    )
    with pytest.raises(SystemExit) as exc:
        run(cfg, tmp_path, task=task)
    assert exc.value.code == 130
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["interrupted"] is True
    assert res["study"] == "quadratic"
    assert res["n_complete"] == 2 and res["n_failed"] == 1
    rows = _read_csv(tmp_path / "trials.csv")
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE", "FAILED"]
    assert rows[2]["fail_reason"].startswith("interrupted")
    assert res["best_value"] == min(float(r["value"]) for r in rows[:2])
    assert (tmp_path / "convergence.png").is_file() and (tmp_path / "study.db").is_file()
    # The same storage resumes the study: the interrupted trial is evaluated again
    # under its own id (as a sweep relaunches its interrupted jobs), then the rest.
    task.fail_when = None
    cfg.storage = f"sqlite:///{tmp_path / 'study.db'}"
    best = run(cfg, tmp_path / "resumed", task=task)
    res = json.loads((tmp_path / "resumed" / "results.json").read_text())
    assert res["n_finished"] == 6 and res["n_complete"] == 6
    rows = _read_csv(tmp_path / "resumed" / "trials.csv")
    assert [r["state"] for r in rows] == ["COMPLETE"] * 6
    assert best == res["best_value"] and math.isfinite(best)


# --- the counts: refused with the key and the value, before anything is stored --------


def _composed(*overrides: str):
    """The CLI's config composed from ``conf`` (Hydra parses each override's type)."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize(
    ("override", "exc", "message"),
    [
        ("n_trials=2.5", TypeError, "n_trials: expected an integer >= 0, got 2.5."),
        ("n_trials=abc", TypeError, "n_trials: expected an integer >= 0, got 'abc'."),
        ("n_trials=true", TypeError, "n_trials: expected an integer >= 0, got True."),
        ("n_trials=-1", ValueError, "n_trials: expected an integer >= 0, got -1."),
        ("n_trials=null", ValueError, "n_trials: expected an integer >= 0, got None."),
        ("batch_size=0", ValueError, "batch_size: expected an integer >= 1, got 0."),
        ("batch_size=1.5", TypeError, "batch_size: expected an integer >= 1, got 1.5."),
        ("seed=abc", TypeError, "seed: expected an integer in [0, 2**63) or null, got 'abc'."),
        ("seed=1.5", TypeError, "seed: expected an integer in [0, 2**63) or null, got 1.5."),
        ("seed=-3", ValueError, "seed: expected an integer in [0, 2**63) or null, got -3."),
        (
            "seed=9223372036854775808",
            ValueError,
            "seed: expected an integer in [0, 2**63) or null, got 9223372036854775808.",
        ),
        ("n_initial=2.5", TypeError, "n_initial: expected an integer >= 0 or null, got 2.5."),
    ],
)
def test_cli_refuses_a_bad_count_naming_the_key_before_storing_anything(
    tmp_path, override, exc, message
):
    cfg = _composed("task=branin", "n_trials=3", override)
    out = tmp_path / "out"
    with pytest.raises(exc) as err:
        run(cfg, out)
    assert str(err.value) == message
    assert not out.exists()  # no study.db, no report: nothing was written


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (("n_trials=2", "seed=7", "batch_size=2"), (2, 7, 2)),
        (("n_trials=2e0", "seed=null", "batch_size=null"), (2, None, 1)),
    ],
)
def test_cli_accepts_integer_counts_and_nulls(tmp_path, overrides, expected):
    cfg = _composed("task=branin", "n_initial=2", *overrides)
    best = run(cfg, tmp_path)
    res = json.loads((tmp_path / "results.json").read_text())
    n_trials, seed, batch_size = expected
    assert (res["n_trials"], res["n_finished"], res["batch_size"]) == (
        n_trials,
        n_trials,
        batch_size,
    )
    assert type(res["n_trials"]) is int
    if seed is not None:
        assert res["seed"] == seed
    assert best == res["best_value"]


def test_cli_process_exits_non_zero_on_a_fractional_n_trials(tmp_path):
    proc = _cli(
        "task=branin",
        "n_trials=2.5",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode != 0
    assert "n_trials: expected an integer >= 0, got 2.5" in proc.stderr
    assert not (tmp_path / "run" / "study.db").exists()


def test_fallbacks_are_counted_in_results_and_printed_at_the_end(tmp_path, capsys, monkeypatch):
    # a model that cannot fit turns the run into space-filling search: never silently
    import surrogates.base
    from surrogates.base import FitError, Surrogate

    class _AlwaysFails(Surrogate):
        name = "always_fails_for_test"

        def fit(self, X, Y, columns, seed, init=None, refit=True):
            raise FitError("the kernel matrix is not positive definite")

    # registered for this test only (the contract tests iterate over the registry)
    monkeypatch.setitem(surrogates.base._REGISTRY, _AlwaysFails.name, _AlwaysFails)

    task = _Quadratic()
    cfg = OmegaConf.create(
        {
            "surrogate": {"name": "always_fails_for_test"},
            "acquisition": {"name": "qlognei"},
            "n_trials": 7,
            "n_initial": 3,
            "seed": 0,
            "storage": None,
            "study": None,
            "batch_size": 1,
        }
    )
    with pytest.warns(RuntimeWarning, match="last 3 proposals fell back"):
        run(cfg, tmp_path, task=task)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["fallbacks"]["n_fallback"] == 4 and res["fallbacks"]["n_model_phase"] == 4
    assert "not positive definite" in next(iter(res["fallbacks"]["reasons"]))
    out = capsys.readouterr().out
    assert "bayesopt: 4 of 4 model proposals fell back to space-filling points" in out
