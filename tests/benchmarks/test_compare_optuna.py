"""Smoke tests of benchmarks/compare_optuna.py and benchmarks/ask_latency.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bayesopt.space import Categorical, Float, Int
from benchmarks import ask_latency, compare_optuna

OPTIMIZERS = [compare_optuna.OURS, "optuna-gp"]


def test_compare_smoke(tmp_path):
    out = tmp_path / "compare.json"
    doc = compare_optuna.main(
        [
            "--tasks",
            "branin",
            "hartmann6",
            "--seeds",
            "0",
            "--budget",
            "12",
            "--optimizers",
            *OPTIMIZERS,
            "--output",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    assert len(doc["runs"]) == 2 * len(OPTIMIZERS)
    assert {(r["task"], r["optimizer"]) for r in doc["summary"]} == {
        (t, o) for t in ("branin", "hartmann6") for o in OPTIMIZERS
    }
    for run in doc["runs"]:
        assert len(run["values"]) == len(run["ask_seconds"]) == len(run["regret_curve"]) == 12
        curve = np.array(run["regret_curve"])
        assert np.all(np.diff(curve) <= 0) and curve[-1] >= 0
        direction_best = min(run["values"])
        assert run["best_value"] == direction_best
        assert run["regret"] == pytest.approx(max(direction_best - run["optimal_value"], 0.0))
        assert all(s > 0 for s in run["ask_seconds"])
        assert len(run["ask_cpu_seconds"]) == 12


def test_compare_workers_match_serial(tmp_path):
    argv = [
        "--tasks",
        "branin",
        "--seeds",
        "0",
        "1",
        "--budget",
        "6",
        "--optimizers",
        "random",
        "optuna-tpe",
    ]
    serial = compare_optuna.main([*argv, "--output", str(tmp_path / "a.json")])
    parallel = compare_optuna.main([*argv, "--workers", "2", "--output", str(tmp_path / "b.json")])
    assert parallel["config"]["torch_threads"] >= 1
    assert [r["values"] for r in serial["runs"]] == [r["values"] for r in parallel["runs"]]


def test_baselines_flag_adds_columns():
    args = compare_optuna._parse_args(["--baselines"])
    assert args.optimizers == [compare_optuna.OURS, "optuna-gp", "optuna-tpe", "random"]
    args = compare_optuna._parse_args(["--optimizers", "random", "--baselines"])
    assert args.optimizers == ["random", "optuna-tpe"]


def test_summarize_quantiles():
    records = [
        {
            "task": "t",
            "optimizer": "o",
            "budget": 3,
            "regret": r,
            "ask_seconds": [s, 2 * s],
            "ask_cpu_seconds": [s, s],
        }
        for r, s in zip([0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0, 5.0])
    ]
    (row,) = compare_optuna.summarize(records)
    assert row["n_seeds"] == 5
    assert (row["regret_median"], row["regret_q25"], row["regret_q75"]) == (2.0, 1.0, 3.0)
    assert row["ask_seconds_median"] == 2.0  # of [1, 1, 1, 1, 2, 2, 2, 2, 5, 10]
    assert row["ask_seconds_mean"] == pytest.approx(2.7)
    assert row["ask_cpu_seconds_median"] == 1.0
    assert "regret med" in compare_optuna.format_table([row])


def test_optuna_distributions_same_box():
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    dists = compare_optuna.optuna_distributions(
        {
            "x": Float(-5.0, 10.0),
            "lr": Float(1e-5, 1e-1, log=True),
            "n": Int(1, 4),
            "act": Categorical(["relu", "tanh"]),
        }
    )
    assert dists["x"] == FloatDistribution(-5.0, 10.0)
    assert dists["lr"] == FloatDistribution(1e-5, 1e-1, log=True)
    assert dists["n"] == IntDistribution(1, 4)
    assert dists["act"] == CategoricalDistribution(["relu", "tanh"])


def test_design_points_cover_box_deterministically():
    space = {"a": Float(-1.0, 3.0), "b": Float(1e-3, 1.0, log=True)}
    pts = ask_latency.design_points(space, 20, seed=3)
    assert len(pts) == 20 and pts == ask_latency.design_points(space, 20, seed=3)
    a = np.array([p["a"] for p in pts])
    b = np.array([p["b"] for p in pts])
    assert a.min() >= -1.0 and a.max() <= 3.0 and b.min() >= 1e-3 and b.max() <= 1.0
    # Sobol in log space: about half of the points below the geometric midpoint.
    assert 6 <= int(np.sum(b < math.sqrt(1e-3))) <= 14
    with pytest.raises(TypeError, match="'n'"):
        ask_latency.design_points({"n": Int(1, 4)}, 4, seed=0)


def test_ask_latency_smoke(tmp_path):
    out = tmp_path / "latency.json"
    doc = ask_latency.main(
        ["--sizes", "20", "--repeats", "2", "--optimizers", *OPTIMIZERS, "--output", str(out)]
    )
    assert out.exists()
    assert [(r["n_observations"], r["optimizer"]) for r in doc["results"]] == [
        (20, o) for o in OPTIMIZERS
    ]
    for row in doc["results"]:
        assert len(row["ask_seconds"]) == len(row["ask_cpu_seconds"]) == 2
        assert row["ask_seconds_median"] > 0 and row["ask_cpu_seconds_median"] >= 0
    assert "bayesopt cpu" in ask_latency.format_table(doc["results"], OPTIMIZERS)


def test_branin_regret_ci(tmp_path):
    """Our default reaches a median Branin regret below 0.05 in 30 evaluations (3 seeds).

    The CI version of the benchmark's target (median < 0.005 over 10 seeds); about 30 s on
    two idle cores.
    """
    doc = compare_optuna.main(
        [
            "--tasks",
            "branin",
            "--seeds",
            "0",
            "1",
            "2",
            "--budget",
            "30",
            "--optimizers",
            compare_optuna.OURS,
            "--output",
            str(tmp_path / "branin.json"),
        ]
    )
    (row,) = doc["summary"]
    assert row["regret_median"] < 0.05, row
