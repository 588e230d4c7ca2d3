"""The Hydra sweeper plugin: discovery, launchers, failures, the failure limit and resume.

Sweeps of the example app (``examples/train.py``) and of a quadratic test app
(``bo_sweep_app.py``) run as real Hydra multiruns: in subprocesses where the
launcher spawns processes or the test kills the sweeper, in-process otherwise.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from bayesopt import Optimizer, TrialState
from hydra_plugins.bayesopt_sweeper._impl import (
    SweepFailedError,
    failure_limit_exceeded,
    objective_value,
)

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EXAMPLE = REPO / "examples" / "train.py"
APP = HERE / "bo_sweep_app.py"
HEAVY = ("torch", "botorch", "gpytorch", "pyro", "sqlalchemy", "sklearn", "bayesopt.optimizer")
FAST = [
    "hydra.sweeper.optimizer_options.num_restarts=2",
    "hydra.sweeper.optimizer_options.raw_samples=64",
]


def _env(with_repo: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    paths = env.pop("PYTHONPATH", "").split(os.pathsep)
    if with_repo:
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, paths)])
    env["HYDRA_FULL_ERROR"] = "1"
    env["BAYESOPT_TORCH_THREADS"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(script: Path, *overrides: str, cwd: Path, check: bool = True):
    proc = subprocess.run(
        [sys.executable, str(script), "-m", *overrides],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _study(sweep_dir: Path, name: str) -> list:
    opt = Optimizer.load(f"sqlite:///{sweep_dir / 'bayesopt.db'}", name)
    try:
        return opt.trials
    finally:
        opt.close()


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _example_losses(trials) -> list[float]:
    """The example app's loss at each trial's params, computed here with its config."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("example_train", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base = OmegaConf.load(EXAMPLE.parent / "conf" / "config.yaml")
    base.pop("defaults")
    base.pop("hydra")
    losses = []
    for t in trials:
        cfg = base.copy()
        for key, value in t.params.items():
            OmegaConf.update(cfg, key, value)
        losses.append(module.train(cfg))  # hydra.main passes a given config through
    return losses


# --- discovery ------------------------------------------------------------------------
def test_installed_plugin_is_discovered_without_heavy_imports(tmp_path):
    """From outside the repository (the installed package, not the checkout on sys.path)."""
    code = (
        "import json, sys\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.sweeper import Sweeper\n"
        "names = [c.__name__ for c in Plugins.instance().discover(Sweeper)]\n"
        "from hydra.core.config_store import ConfigStore\n"
        "repo = ConfigStore.instance().repo['hydra']['sweeper']\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "mods = [m for m in sys.modules if m.startswith('hydra_plugins.bayesopt')]\n"
        "print(json.dumps({'names': names, 'heavy': heavy, 'mods': sorted(mods),\n"
        "                  'conf': sorted(repo)}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(with_repo=False),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "BayesOptSweeper" in out["names"]
    assert "bayesopt.yaml" in out["conf"]
    assert out["heavy"] == []
    assert "hydra_plugins.bayesopt_sweeper._impl" not in out["mods"]
    assert "hydra_plugins.bayesopt_sweeper.bayesopt_sweeper" in out["mods"]


# --- unit: reading a job's return and the failure limit ---------------------------------
def _ret(value=None, status=JobStatus.COMPLETED) -> JobReturn:
    return JobReturn(status=status, _return_value=value)


@pytest.mark.parametrize(
    ("value", "key", "expected"),
    [
        (0.25, None, 0.25),
        (3, None, 3.0),
        (np.float32(0.5), None, 0.5),
        (torch.tensor([1.5]), None, 1.5),
        ({"loss": 0.1, "acc": 0.9}, "loss", 0.1),
        (OmegaConf.create({"loss": 0.2}), "loss", 0.2),
    ],
)
def test_objective_value_reads_numbers_and_dicts(value, key, expected):
    got, reason = objective_value(_ret(value), key)
    assert reason == ""
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ret", "key", "reason"),
    [
        (_ret(float("nan")), None, "non-finite value nan"),
        (_ret(float("inf")), None, "non-finite value inf"),
        (_ret(None), None, "not a number"),
        (_ret("0.3"), None, "not a number"),
        (_ret(True), None, "not a number"),
        (_ret({"loss": 1.0}), None, "set hydra.sweeper.objective_key"),
        (_ret({"loss": 1.0}), "acc", "without objective_key 'acc'"),
        (_ret(ValueError("boom"), JobStatus.FAILED), None, "job raised ValueError: boom"),
    ],
)
def test_objective_value_turns_bad_returns_into_failures(ret, key, reason):
    got, why = objective_value(ret, key)
    assert got is None
    assert reason in why


def test_failure_limit():
    # 0 stops at the first failure; otherwise judged over at least 5 finished trials
    assert failure_limit_exceeded(1, 1, 0.0)
    assert not failure_limit_exceeded(0, 10, 0.0)
    assert not failure_limit_exceeded(2, 2, 0.5)  # 2 > 0.5 * 5 is false
    assert failure_limit_exceeded(3, 3, 0.5)
    assert not failure_limit_exceeded(5, 10, 0.5)
    assert failure_limit_exceeded(6, 10, 0.5)
    assert not failure_limit_exceeded(10, 10, 1.0)


# --- the example app under three launchers --------------------------------------------
def test_example_app_basic_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    _run(EXAMPLE, f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=5", *FAST, cwd=tmp_path)
    trials = _study(sweep, "train")
    assert [t.id for t in trials] == [0, 1, 2, 3, 4]
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert trials[4].attrs["source"] == "model"  # the 5th trial came from the GP
    for t in trials:
        assert 1e-4 <= t.params["model.lr"] <= 1e-1
        assert t.params["model.layers"] in (1, 2, 3)
        assert t.params["model.activation"] in ("relu", "tanh")
    # Each stored value is the validation log loss the app computes for the stored params
    # (so the overrides the jobs ran are the points the study holds). This replaces
    # 0 < loss < 3.0, which every configuration passes: 300 uniform random configurations
    # of this space scored 0.065 to 2.32. No "it optimized" bound fits 5 trials (4 Sobol):
    # random search's best of 5 is below this sweep's best (0.095) with probability 36%,
    # and a bound it misses 95% of the time (best of 5 below 0.070: 3.3%) is beyond what
    # 4 Sobol points and 1 model step can be relied on to reach.
    for t, loss in zip(trials, _example_losses(trials), strict=True):
        assert t.value == pytest.approx(loss, rel=1e-9, abs=0.0), (t.id, t.params)
    res = OmegaConf.load(sweep / "optimization_results.yaml")
    best = min(trials, key=lambda t: t.value)
    assert res.best_trial == best.id
    assert res.best_value == best.value
    assert res.best_params == best.params
    assert res.n_complete == 5 and res.n_failed == 0
    # Hydra job numbers are trial ids
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == list("01234")


def test_example_app_joblib_keeps_two_trials_in_flight(tmp_path):
    sweep = tmp_path / "sweep"
    _run(
        EXAMPLE,
        f"hydra.sweep.dir={sweep}",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.batch_size=2",
        cwd=tmp_path,
    )
    trials = _study(sweep, "train")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    # two trials in flight at once, never more
    spans = [(t.attrs["created_at"], t.attrs["finished_at"]) for t in trials]
    overlap = [sum(c <= start < f for c, f in spans) for start, _ in spans]
    assert max(overlap) == 2
    assert OmegaConf.load(sweep / "optimization_results.yaml").n_complete == 4


def test_example_app_submitit_local(tmp_path):
    sweep = tmp_path / "sweep"
    _run(
        EXAMPLE,
        f"hydra.sweep.dir={sweep}",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=4",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.batch_size=2",
        cwd=tmp_path,
    )
    trials = _study(sweep, "train")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    res = OmegaConf.load(sweep / "optimization_results.yaml")
    assert res.best_value == min(t.value for t in trials)
    assert (sweep / ".submitit").is_dir()


@pytest.mark.slow
def test_example_app_ray_launcher(tmp_path):
    """hydra-ray-launcher 1.2.2 (not in our extras: it pins cloudpickle<3); ~30 s for Ray."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    sweep = tmp_path / "sweep"
    _run(
        EXAMPLE,
        f"hydra.sweep.dir={sweep}",
        "hydra/launcher=ray",
        "+hydra.launcher.ray.init.num_cpus=2",
        "+hydra.launcher.ray.init.include_dashboard=false",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.batch_size=2",
        cwd=tmp_path,
    )
    trials = _study(sweep, "train")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4


# --- failures, in-process ---------------------------------------------------------------
def _sweep_in_process(hydra_sweep_runner, tmp_path, *overrides):
    from bo_sweep_app import objective

    return hydra_sweep_runner(
        calling_file=str(APP),
        calling_module=None,
        task_function=objective,
        config_path="conf",
        config_name="bo_sweep_app",
        overrides=[*FAST, *overrides],
        temp_dir=tmp_path / "sweep",
    )


@pytest.mark.parametrize(
    ("fail", "reason"), [("raise", "RuntimeError"), ("return_nan", "non-finite")]
)
def test_failed_jobs_become_failed_trials_and_the_sweep_goes_on(
    hydra_sweep_runner, tmp_path, fail, reason
):
    sweep = _sweep_in_process(
        hydra_sweep_runner,
        tmp_path,
        f"fail={fail}",
        "fail_above=0.5",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.max_failure_rate=1.0",
    )
    with sweep:
        sweep_dir = Path(sweep.temp_dir)
        trials = _study(sweep_dir, "bo_sweep_app")
        res = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert len(trials) == 8
    failed = [t for t in trials if t.state is TrialState.FAILED]
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    assert failed and done
    assert all(t.params["x"] > 0.5 for t in failed)
    assert all(t.params["x"] <= 0.5 for t in done)
    assert all(reason in t.attrs["fail_reason"] for t in failed)
    assert res.n_failed == len(failed) and res.n_complete == len(done)
    best = min(done, key=lambda t: t.value)
    assert res.best_value == pytest.approx(
        (best.params["x"] - 0.3) ** 2 + (best.params["y"] - 0.6) ** 2
    )


def test_dict_return_with_objective_key_and_a_fixed_command_line_value(
    hydra_sweep_runner, tmp_path
):
    sweep = _sweep_in_process(
        hydra_sweep_runner,
        tmp_path,
        "as_dict=true",
        "y=0.25",  # overrides params.y: fixed
        "hydra.sweeper.objective_key=loss",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.study=dict_study",
    )
    with sweep:
        trials = _study(Path(sweep.temp_dir), "dict_study")
        rets = [r for batch in sweep.returns for r in batch]
    assert [set(t.params) for t in trials] == [{"x"}] * 3
    for t, r in zip(trials, rets, strict=True):
        assert r.cfg.y == 0.25
        assert t.value == pytest.approx((t.params["x"] - 0.3) ** 2 + (0.25 - 0.6) ** 2)


@pytest.mark.parametrize(("rate", "n_run"), [(0.5, 3), (0.0, 1)])
def test_max_failure_rate_stops_the_sweep_with_a_clear_message(
    hydra_sweep_runner, tmp_path, rate, n_run
):
    sweep = _sweep_in_process(
        hydra_sweep_runner,
        tmp_path,
        "fail=raise",
        "fail_above=-1",  # every job raises
        "hydra.sweeper.n_trials=10",
        f"hydra.sweeper.max_failure_rate={rate}",
    )
    with pytest.raises(SweepFailedError) as info:
        with sweep:
            pass
    msg = str(info.value)
    assert f"{n_run} of {n_run} finished trials failed" in msg
    assert f"max_failure_rate={rate}" in msg
    assert "RuntimeError: diverged" in msg
    trials = _study(tmp_path / "sweep", "bo_sweep_app")
    assert [t.state for t in trials] == [TrialState.FAILED] * n_run
    res = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert res.best_value is None and res.n_failed == n_run


def test_an_override_the_config_refuses_stops_before_any_job(hydra_sweep_runner, tmp_path):
    from hydra.errors import ConfigCompositionException

    sweep = _sweep_in_process(hydra_sweep_runner, tmp_path, "not_in_config=interval(0, 1)")
    with pytest.raises(ConfigCompositionException, match="not_in_config"):
        with sweep:
            pass
    trials = _study(tmp_path / "sweep", "bo_sweep_app")
    assert trials and all(t.state is TrialState.FAILED for t in trials)
    assert "invalid overrides" in trials[0].attrs["fail_reason"]
    assert not [p for p in (tmp_path / "sweep").iterdir() if p.name.isdigit()]  # no job ran


# --- resume after a crash ---------------------------------------------------------------
def test_resume_after_crash_reruns_nothing_finished_and_numbering_continues(tmp_path):
    sweep = tmp_path / "sweep"
    record = tmp_path / "jobs.jsonl"
    cmd = [f"hydra.sweep.dir={sweep}", f"record={record}", "hydra.sweeper.n_initial=6", *FAST]
    crashed = _run(APP, *cmd, "crash_at=3", cwd=tmp_path, check=False)
    assert crashed.returncode == 3
    first = _records(record)
    assert [r["job"] for r in first] == [0, 1, 2, 3]
    states = [t.state for t in _study(sweep, "bo_sweep_app")]
    assert states == [TrialState.COMPLETE] * 3 + [TrialState.RUNNING]

    _run(APP, *cmd, "crash_at=3", cwd=tmp_path)  # the same command resumes
    second = _records(record)[len(first) :]
    assert [r["job"] for r in second] == [3, 4, 5]  # the interrupted trial, then new ones
    assert (second[0]["x"], second[0]["y"]) == (first[3]["x"], first[3]["y"])
    trials = _study(sweep, "bo_sweep_app")
    assert [t.id for t in trials] == list(range(6))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert OmegaConf.load(sweep / "optimization_results.yaml").n_complete == 6

    # a larger n_trials runs only the difference
    _run(APP, *cmd, "hydra.sweeper.n_trials=8", cwd=tmp_path)
    assert [r["job"] for r in _records(record)[len(first) + 3 :]] == [6, 7]
    trials = _study(sweep, "bo_sweep_app")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
    assert math.isclose(
        OmegaConf.load(sweep / "optimization_results.yaml").best_value,
        min(t.value for t in trials),
    )


@pytest.mark.slow
def test_speedup_benchmark_smoke(tmp_path):
    """benchmarks/sweeper_speedup.py end to end on a small budget, asserting a real speed-up.

    Marked slow, and the speed-up is not checked in CI: at a CI-sized budget the ratio is
    not robust on 2 shared cores. Each job in a joblib worker process costs about 2 s of
    Hydra set-up that the single in-process worker does not pay, so 4 trials x 2 s gave
    1.81x under a load of 7 and 1.18x under a load of 4.5 on the same machine; 6 trials x
    3 s (about 75 s) gave 1.41x. CI checks the mechanism instead (two jobs in flight at
    once: test_example_app_joblib_keeps_two_trials_in_flight); the benchmark's own run
    (20 trials x 5 s) measures the magnitude.
    """
    from benchmarks.sweeper_speedup import main

    doc = main(["--trials", "6", "--sleep", "3", "--output", str(tmp_path / "s.json")])
    assert [r["workers"] for r in doc["rows"]] == [1, 2]
    assert all(r["complete"] == 6 for r in doc["rows"])
    speedup = json.loads((tmp_path / "s.json").read_text())["rows"][1]["speedup_sweep"]
    assert speedup > 1.2  # two joblib workers; 2x in the ideal case
