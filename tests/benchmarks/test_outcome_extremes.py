"""benchmarks/outcome_extremes.py: the penalty tasks and the summary (random search: fast)."""

from __future__ import annotations

import math
import sys

from benchmarks import outcome_extremes as oe


def test_the_penalty_region_and_the_optimum():
    task, objective, budget = oe.make_objective("branin_infeasible")
    assert budget == 30 and objective({"x1": 7.6, "x2": 2.0}) == sys.float_info.max
    # two of Branin's three minimizers are feasible, the third (3 pi, 2.475) is not
    assert objective({"x1": math.pi, "x2": 2.275}) == task.evaluate({"x1": math.pi, "x2": 2.275})
    assert objective({"x1": 3 * math.pi, "x2": 2.475}) == sys.float_info.max
    _, mild, _ = oe.make_objective("hartmann6_infeasible_mild")
    assert mild({f"x{i}": 0.9 for i in range(1, 7)}) == 0.0


def test_random_runs_and_the_summary(capsys):
    record = oe.run_one("branin_infeasible", seed=0, method="random")
    assert record["fallbacks"] == 0 and 0 < record["regret"] < 10
    oe.main(["--tasks", "branin_infeasible", "--seeds", "0-2", "--method", "random"])
    out = capsys.readouterr().out
    assert out.count('"method": "random"') == 3
    assert "branin_infeasible      random  seeds=3" in out
    rows = oe.summarize([{**record, "seed": s} for s in range(3)])
    assert rows == [
        {"task": "branin_infeasible", "method": "random", "seeds": 3,
         "median_regret": record["regret"], "fallbacks": 0}
    ]  # fmt: skip
