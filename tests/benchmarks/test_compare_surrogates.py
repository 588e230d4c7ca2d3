"""Smoke and unit tests of benchmarks/compare_surrogates.py (the full run is not part of CI)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks import compare_surrogates as cs
from benchmarks.harness import RunLog
from surrogates import available_surrogates


def test_quick_mode_runs_every_task_and_writes_json_and_markdown(tmp_path):
    out = tmp_path / "quick.json"
    doc = cs.main(["--quick", "--output", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    assert doc["config"]["quick"] and doc["config"]["surrogates"] == ["gp"]
    assert [r["task"] for r in doc["runs"]] == list(cs.QUICK_BUDGETS)
    for run in doc["runs"]:
        budget = cs.QUICK_BUDGETS[run["task"]]
        assert run["surrogate"] == "gp" and run["seed"] == 0 and run["budget"] == budget
        assert len(run["values"]) == len(run["ask_seconds"]) == len(run["attrs"]) == budget
        curve = np.array(run["regret_curve"])
        assert np.all(np.diff(curve) <= 0) and curve[-1] >= 0
        assert run["regret"] == pytest.approx(max(min(run["values"]) - run["optimal_value"], 0))
        sources = [a["source"] for a in run["attrs"]]
        # Sobol first, then the model (each quick budget goes past the initial design).
        assert sources[0] == "sobol" and sources[-1] == "model", sources
        assert all(a["surrogate"] == "gp" for a in run["attrs"] if a["source"] == "model")
    rows = {r["task"]: r for r in doc["summary"]}
    assert set(rows) == set(cs.QUICK_BUDGETS)
    for row in rows.values():
        assert row["n_seeds"] == 1 and row["n_model_asks"] >= 2 and row["n_fallbacks"] == 0
        assert row["model_ask_seconds_median"] > 0
    md = out.with_suffix(".md").read_text()
    assert md.startswith("| task | surrogate |") and "| hartmann6_d25 | gp | 16 | 1 |" in md


def test_workers_reproduce_the_serial_run(tmp_path):
    argv = ["--surrogates", "gp", "--tasks", "branin", "--seeds", "0", "1", "--budget", "6"]
    argv += ["--threads", "1"]
    serial = cs.main([*argv, "--quick", "--output", str(tmp_path / "a.json")])
    parallel = cs.main([*argv, "--quick", "--workers", "2", "--output", str(tmp_path / "b.json")])
    assert [r["values"] for r in serial["runs"]] == [r["values"] for r in parallel["runs"]]
    # Rerun with one more seed: the two logged runs are read back, one new run is made.
    more = cs.main(
        [*argv, "--seeds", "0", "1", "2", "--quick", "--output", str(tmp_path / "a.json")]
    )
    assert more["config"]["runs_resumed"] == 2 and [r["seed"] for r in more["runs"]] == [0, 1, 2]
    assert [r["values"] for r in more["runs"][:2]] == [r["values"] for r in serial["runs"]]
    assert len((tmp_path / "a.runs.jsonl").read_text().splitlines()) == 3
    fresh = cs.main([*argv, "--quick", "--fresh", "--output", str(tmp_path / "a.json")])
    assert fresh["config"]["runs_resumed"] == 0
    assert (tmp_path / "a.runs.jsonl.old").exists()


def test_run_log_keys_skip_cut_lines_and_take_other_machines_logs(tmp_path, capsys):
    log = RunLog(tmp_path / "runs.jsonl", ("task", "seed", "options"))
    log.append({"task": "t", "seed": 0, "options": {"a": 1, "b": 2}, "regret": 1.0})
    log.append({"task": "t", "seed": 1, "options": {}, "regret": 2.0})
    with log.path.open("a") as f:  # another machine's log appended, then a line cut off
        f.write(json.dumps({"task": "t", "seed": 0, "options": {"b": 2, "a": 1}, "regret": 0.5}))
        f.write('\n{"task": "t", "se')
    loaded = log.load()
    assert "not a complete record" in capsys.readouterr().out
    assert len(loaded) == 2  # option order does not make another run; the last record wins
    assert loaded[log.key({"task": "t", "seed": 0, "options": {"a": 1, "b": 2}})]["regret"] == 0.5
    assert RunLog(tmp_path / "none.jsonl", ("task",)).load() == {}


def test_the_report_names_the_machines_when_runs_ran_on_several():
    records = [_record("t", "gp", s, [2.0, 1.0]) for s in range(2)]
    records[0]["host"] = {"node": "big", "cpus": 16, "torch": "2.11.0"}
    rows = cs.summarize_runs(records)
    assert rows[0]["hosts"] == ["big (16 CPUs, torch 2.11.0)", "unrecorded"]
    text = cs.report(rows, {}, {}, [])
    assert "several machines" in text and "big (16 CPUs, torch 2.11.0): gp/t" in text
    assert "several machines" not in cs.report(cs.summarize_runs(records[1:]), {}, {}, [])


def test_default_protocol_and_the_reduced_surrogates():
    args = cs._parse_args([])
    assert sorted(args.surrogates) == available_surrogates()
    assert args.surrogates[0] == "gp" and args.surrogates[-1] == "auto"
    assert args.seeds == list(range(10))
    assert args.budgets == {"branin": 30, "hartmann6": 60, "hartmann6_d25": 60}
    assert args.reduced == ["hmc_bnn"]
    assert args.reduced_budgets == {"branin": 30, "hartmann6": 40, "hartmann6_d25": 40}
    jobs = cs._jobs(args)
    hmc = [j for j in jobs if j[1] == "hmc_bnn"]
    assert {j[2] for j in hmc} == {0, 1, 2}
    assert len(jobs) == 3 * 10 * (len(args.surrogates) - 1) + 3 * 3
    assert all(j[5] is None for j in jobs)  # default acquisition-optimizer budget
    args = cs._parse_args(["--reduced-budget", "branin=20", "--reduced-seeds", "2"])
    assert args.reduced_budgets["branin"] == 20 and args.reduced_seeds == 2
    quick = cs._parse_args(["--quick", "--surrogates", "gp", "hmc_bnn"])
    assert {j[2] for j in cs._jobs(quick)} == {0}  # --quick does not reduce further
    assert all(j[5] == cs.QUICK_SETTINGS for j in cs._jobs(quick))


@pytest.mark.parametrize(
    "argv",
    [
        ["--budget", "0"],
        ["--workers", "0"],
        ["--options", '{"nope": {}}'],
        ["--reduced-budget", "branin"],
        ["--reduced-budget", "nope=3"],
        ["--tasks", "nope"],
        ["--surrogates", "nope"],
    ],
)
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        cs._parse_args(argv)
    assert "error" in capsys.readouterr().err


def _record(task, surrogate, seed, curve, model_seconds=(1.0,)):
    n_sobol = len(curve) - len(model_seconds)
    attrs = [{"source": "sobol"}] * n_sobol + [{"source": "model"}] * len(model_seconds)
    asks = [0.001] * n_sobol + list(model_seconds)
    return {
        "task": task,
        "surrogate": surrogate,
        "optimizer": surrogate,
        "seed": seed,
        "budget": len(curve),
        "regret": curve[-1],
        "regret_curve": curve,
        "ask_seconds": asks,
        "ask_cpu_seconds": asks,
        "attrs": attrs,
        "wall_seconds": sum(asks),
    }


def test_summaries_regret_at_a_budget_and_autos_gap():
    records = [
        _record("t", "gp", s, [5.0, 2.0, r], model_seconds=(0.5, m))
        for s, (r, m) in enumerate([(1.0, 0.7), (0.1, 0.9), (0.01, 1.1)])
    ]
    records += [_record("t", "auto", s, [5.0, 3.0, r]) for s, r in enumerate([0.5, 0.2, 0.3])]
    for rec, used in zip(records[3:], ["gp", "ibnn", "gp"]):
        rec["attrs"][-1] = {"source": "model", "surrogate": "auto", "surrogate_used": used}
    records += [_record("t", "hmc_bnn", 0, [4.0, 0.05])]
    rows = cs.summarize_runs(records)
    gp = next(r for r in rows if r["surrogate"] == "gp")
    assert gp["regret_median"] == 0.1 and gp["n_seeds"] == 3
    assert (gp["regret_q25"], gp["regret_q75"]) == (pytest.approx(0.055), pytest.approx(0.55))
    assert gp["model_ask_seconds_median"] == pytest.approx(0.6)  # of 0.5 x3, 0.7, 0.9, 1.1
    assert gp["n_model_asks"] == 6 and gp["n_fallbacks"] == 0 and "surrogates_used" not in gp
    auto = next(r for r in rows if r["surrogate"] == "auto")
    assert auto["surrogates_used"] == {"gp": 2, "ibnn": 1}
    assert cs.regret_at(records, "t", 2) == {"gp": 2.0, "auto": 3.0, "hmc_bnn": 0.05}
    gaps = cs.auto_gaps(rows)
    assert gaps["t"]["best_single"] == "hmc_bnn"
    assert gaps["t"]["log10_gap"] == pytest.approx(math.log10(0.3 / 0.05))
    assert cs.auto_gaps([r for r in rows if r["surrogate"] != "auto"]) == {}
    table = cs.format_table(rows)
    assert "IQR" in table and "hmc_bnn" in table
    report = cs.report(rows, {}, gaps, [])
    assert "auto on t chose: {'gp': 2, 'ibnn': 1}" in report and "NOT within 0.3" in report
    assert cs.format_markdown(rows).count("\n") == len(rows) + 1
