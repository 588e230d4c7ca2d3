"""Smoke and unit tests of benchmarks/compare_text.py (the full run is not part of CI)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import compare_text as ct


def test_quick_mode_runs_every_method_on_both_tasks(tmp_path):
    out = tmp_path / "quick.json"
    doc = ct.main(["--quick", "--threads", "1", "--output", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    assert doc["config"]["quick"] and doc["config"]["budget"] == 6
    assert doc["config"]["options"] == {"neural_bandit": {"epochs": 50}}
    assert doc["config"]["task_options"] == {
        "hpobench_text": {"dataset": "blood_transfusion", "n_candidates": 200},
        "zero_shot_prompt": {"n_candidates": 40},
    }
    assert [(r["task"], r["method"]) for r in doc["runs"]] == [
        (t, m) for t in ct.TASKS for m in ct.METHODS
    ]
    for run in doc["runs"]:
        info = doc["tasks"][run["task"]]
        assert run["n_candidates"] == info["n_candidates"] and run["seed"] == 0
        assert len(run["values"]) == len(run["regret_curve"]) == len(run["sources"]) == 6
        curve = np.array(run["regret_curve"])
        assert np.all(np.diff(curve) <= 0) and np.all(curve >= 0)
        assert run["best_value"] == max(run["values"]) <= run["optimal_value"]
        assert run["regret"] == pytest.approx(
            ct.normalized_regret(run["best_value"], info["optimal_value"], info["reference_value"])
        )
        if run["method"] == "random":
            assert run["sources"] == ["random"] * 6
        else:
            # 3 initial candidates, then the model (every candidate proposed once)
            assert run["sources"][:3] == ["sobol"] * 3 and run["sources"][3:] == ["model"] * 3
        assert len(set(run["rows"])) == 6  # no candidate is evaluated twice
    rows = {(r["task"], r["method"]): r for r in doc["summary"]}
    assert len(rows) == len(ct.TASKS) * (len(ct.METHODS) + 1)  # + random (exact)
    exact = rows[("zero_shot_prompt", "random (exact)")]
    assert exact == {
        "task": "zero_shot_prompt",
        **ct.random_search_exact(
            ct.make_text_task("zero_shot_prompt", {"n_candidates": 40}).values, 6
        ),
    }
    assert "vs_random" not in rows[("zero_shot_prompt", "random")]
    assert rows[("zero_shot_prompt", "gp+qlognei")]["vs_random"]["seeds"] == 1
    md = out.with_suffix(".md").read_text()
    assert (
        md.startswith("| task | method |") and "| zero_shot_prompt | neural_bandit+ts | 6 |" in md
    )
    # Two partial outputs summarize together as one.
    halves = []
    for task in ct.TASKS:
        part = dict(doc, runs=[r for r in doc["runs"] if r["task"] == task])
        part["tasks"] = {task: doc["tasks"][task]}
        halves.append(tmp_path / f"{task}.json")
        halves[-1].write_text(json.dumps(part))
    merged = ct.main(["--merge", *map(str, halves), "--output", str(tmp_path / "m.json")])
    assert json.dumps(merged["summary"]) == json.dumps(doc["summary"])
    assert (tmp_path / "m.md").read_text() == md


def test_exact_random_search_closed_form_and_monte_carlo():
    # 4 candidates, 2 draws: the best is drawn with probability 1 - C(3,2)/C(4,2) = 1/2, the
    # second best is the best drawn with probability 1/3, the third with 1/6.
    row = ct.random_search_exact([1.0, 3.0, 0.0, 2.0], budget=2)
    assert row["p_optimum"] == pytest.approx(0.5) and row["evals_to_optimum_median"] == 2
    assert row["regret_median"] == 0.0 and row["regret_q25"] == 0.0
    assert row["regret_q75"] == pytest.approx(2 / 3)  # median value 1.5: regrets 0, 2/3, 4/3
    assert row["regret_mean"] == pytest.approx(2 / 3 / 3 + 4 / 3 / 6)
    assert row["n_seeds"] is None and row["top_fraction_median"] == 0.0
    values = np.random.default_rng(1).normal(size=300).round(1)  # ties included
    row = ct.random_search_exact(values, budget=20)
    rng = np.random.default_rng(2)
    best = np.array([values[rng.choice(300, 20, replace=False)].max() for _ in range(20000)])
    regret = (values.max() - best) / (values.max() - np.median(values))
    assert row["regret_mean"] == pytest.approx(regret.mean(), abs=0.01)
    assert row["regret_median"] == pytest.approx(np.median(regret), abs=1e-9)
    assert row["p_optimum"] == pytest.approx(np.mean(regret == 0), abs=0.01)
    assert row["regret_median_at"][10] >= row["regret_median_at"][20]


def test_exact_row_and_the_binomial_test_of_finding_the_optimum():
    curve = [1.0] * 9
    records = [_record("nb", s, [*curve, 0.0]) for s in range(10)]
    records += [_record("random", s, [*curve, 0.0 if s < 2 else 0.5]) for s in range(10)]
    exact = {"task": "t", **ct.random_search_exact(np.arange(50.0), budget=10)}
    assert exact["p_optimum"] == pytest.approx(0.2)  # 10 draws of 50 distinct values
    rows = ct.with_exact_random(ct.summarize(records), {"t": {"random_exact": exact}})
    assert [r["method"] for r in rows] == ["nb", "random", "random (exact)"]
    assert rows[0]["optimum_p"] == pytest.approx(0.2**10)
    assert rows[1]["optimum_p"] == pytest.approx(1 - 0.8**10 - 10 * 0.2 * 0.8**9)
    table = ct.format_table(rows)
    assert "10/10 @ 10 (p=1e-07)" in table and "P=0.20 @ 25" in table
    assert "| random (exact) | 10 | exact |" in ct.format_markdown(rows)
    # other budgets than the exact row's: no exact row, no test
    assert ct.with_exact_random(
        ct.summarize(records[:10]), {"t": {"random_exact": {**exact, "budget": 50}}}
    ) == ct.summarize(records[:10])


def test_normalized_regret_closed_forms():
    assert ct.normalized_regret(0.9, 0.9, 0.8) == 0.0
    assert ct.normalized_regret(0.8, 0.9, 0.8) == pytest.approx(1.0)
    assert ct.normalized_regret(0.85, 0.9, 0.8) == pytest.approx(0.5)
    assert ct.normalized_regret(0.95, 0.9, 0.8) == 0.0  # clipped
    assert np.isnan(ct.normalized_regret(0.5, 0.9, 0.9))


def _record(method, seed, curve, task="t", sources=None):
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "budget": len(curve),
        "regret_curve": curve,
        "regret": curve[-1],
        "top_fraction": curve[-1] / 10,
        "best_value": 1 - curve[-1],
        "optimal_value": 1.0,
        "ask_seconds": [0.5] * len(curve),
        "sources": sources or ["model"] * len(curve),
    }


def test_summary_quantiles_and_the_paired_comparison_with_random():
    curve = [1.0] * 19
    records = [_record("random", s, [*curve, 0.5 + 0.01 * s]) for s in range(10)]
    records += [_record("nb", s, [*curve, 0.04 * s]) for s in range(10)]  # beats random every seed
    records += [_record("gp", s, [*curve, 0.5 + 0.01 * s]) for s in range(10)]  # ties everywhere
    hit = [1.0] * 4 + [0.0] * 16  # the optimum at evaluation 5
    records += [_record("ts", s, hit if s < 6 else [*curve, 0.2]) for s in range(10)]
    rows = {r["method"]: r for r in ct.summarize(records)}
    nb = rows["nb"]
    assert nb["n_seeds"] == 10 and nb["budget"] == 20
    assert nb["regret_median"] == pytest.approx(0.18)
    assert (nb["regret_q25"], nb["regret_q75"]) == (pytest.approx(0.09), pytest.approx(0.27))
    assert nb["regret_median_at"] == {10: 1.0, 20: pytest.approx(0.18)}
    assert nb["model_ask_seconds_median"] == 0.5
    assert nb["n_optimum"] == 1 and nb["evals_to_optimum_median"] is None  # seed 0 at the end
    assert rows["ts"]["n_optimum"] == 6 and rows["ts"]["evals_to_optimum_median"] == 5
    # all 10 differences negative and distinct: exact one-sided p = 2^-10
    assert nb["vs_random"] == {
        "against": "random",
        "seeds": 10,
        "wins": 10,
        "ties": 0,
        "p_value": pytest.approx(2**-10),
    }
    assert rows["gp"]["vs_random"]["ties"] == 10 and np.isnan(rows["gp"]["vs_random"]["p_value"])
    assert "vs_random" not in rows["random"]
    text = ct.format_table(ct.summarize(records))
    assert "10/10 (p=0.00098)" in text and " 6/10 @ 5 " in text
    assert ct.format_markdown(ct.summarize(records)).count("\n") == 5


@pytest.mark.parametrize(
    "argv",
    [
        ["--budget", "5", "--n-initial", "5"],
        ["--n-initial", "0"],
        ["--workers", "0"],
        ["--n-candidates", "20"],
        ["--methods", "nope"],
        ["--tasks", "branin"],
        ["--options", "[1]"],
    ],
)
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        ct._parse_args(argv)
    assert "error" in capsys.readouterr().err


def test_default_protocol():
    args = ct._parse_args([])
    assert args.seeds == list(range(10)) and args.budget == 50 and args.n_initial == 10
    assert args.methods == ["neural_bandit+ucb", "neural_bandit+ts", "gp+qlognei", "random"]
    assert args.task_options == {
        "hpobench_text": {"dataset": "blood_transfusion"},
        "zero_shot_prompt": {},
    }
    assert args.options == {}
    quick = ct._parse_args(["--quick", "--options", '{"neural_bandit": {"nu": 0.5}, "ucb": {}}'])
    assert quick.options == {"neural_bandit": {"epochs": 50, "nu": 0.5}, "ucb": {}}
    args = ct._parse_args(["--dataset", "kc1", "--n-candidates", "500"])
    assert args.task_options["hpobench_text"] == {"dataset": "kc1", "n_candidates": 500}
