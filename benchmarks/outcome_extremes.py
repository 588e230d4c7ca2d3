"""Final regret with and without an "infeasible" region that returns ``sys.float_info.max``.

The model path bounds extreme outcomes before a fit (``surrogates.outcomes``).
This script measures what that costs on ordinary tasks and what it buys where
a region of the space returns the usual penalty:

* ``branin`` (30 evaluations) and ``hartmann6`` (60), as they are;
* ``branin_infeasible``: Branin with ``x1 > 7.5`` returning
  ``sys.float_info.max`` (a sixth of the box). Of Branin's three global minima
  (value 0.397887) two are feasible, ``(-pi, 12.275)`` and ``(pi, 2.275)``;
  the third, ``(3 pi, 2.475)``, lies inside the region;
* ``hartmann6_infeasible``: Hartmann-6 with ``x1 > 0.5`` returning
  ``sys.float_info.max`` (half of the cube). The minimizer (``x1 = 0.2017``)
  is feasible, 0.30 from the region's edge;
* ``branin_infeasible_mild`` / ``hartmann6_infeasible_mild``: the same regions
  returning a benign value near the function's maximum (300 and 0) instead:
  nothing to bound, the reference a well-chosen penalty gives.

The regret is that of the best observed value (the penalty is never the best).
Each run also counts its model fallbacks and its model-based proposals whose
training outcomes were clipped (``bounded_fits``). ``--method random`` runs
uniform random search (trial ``k`` of seed ``s`` from
``numpy.random.default_rng([s, k])``) on the same budget, for reference.

The script uses only ``bayesopt.minimize`` and the benchmark tasks, so it runs
unchanged against an older checkout (``PYTHONPATH=<checkout>``) to measure the
code before the change. ``--bad-fence`` / ``--good-fence`` override
``surrogates.outcomes.BAD_FENCE`` / ``GOOD_FENCE`` for this process (the
constants under study; ``inf`` turns a side off).

Run from the repository root, one process at a time on a shared machine::

    export BAYESOPT_TORCH_THREADS=1
    .venv/bin/python -m benchmarks.outcome_extremes --tasks branin branin_infeasible --seeds 0-9
    .venv/bin/python -m benchmarks.outcome_extremes --tasks hartmann6 --seeds 0-5 --method random
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["TASKS", "make_objective", "run_one", "summarize"]

PENALTY = sys.float_info.max


def _branin_region(p: dict[str, Any]) -> bool:
    return p["x1"] > 7.5


def _hartmann6_region(p: dict[str, Any]) -> bool:
    return p["x1"] > 0.5


#: name -> (benchmark task, evaluations, infeasible(params) or None, value returned there)
TASKS: dict[str, tuple[str, int, Callable[[dict[str, Any]], bool] | None, float]] = {
    "branin": ("branin", 30, None, PENALTY),
    "hartmann6": ("hartmann6", 60, None, PENALTY),
    "branin_infeasible": ("branin", 30, _branin_region, PENALTY),
    "hartmann6_infeasible": ("hartmann6", 60, _hartmann6_region, PENALTY),
    # the same regions returning a benign value about the function's maximum
    # (nothing extreme to bound): what a well-chosen penalty would give
    "branin_infeasible_mild": ("branin", 30, _branin_region, 300.0),
    "hartmann6_infeasible_mild": ("hartmann6", 60, _hartmann6_region, 0.0),
}


def make_objective(name: str) -> tuple[Any, Callable[[dict[str, Any]], float], int]:
    """``(task, objective, budget)`` of a ``TASKS`` entry (the objective returns the penalty)."""
    from benchmarks.base import make_task

    base, budget, infeasible, penalty = TASKS[name]
    task = make_task(base)

    def objective(params: dict[str, Any]) -> float:
        if infeasible is not None and infeasible(params):
            return penalty
        return task(params)

    return task, objective, budget


def run_one(name: str, seed: int, method: str = "bo") -> dict[str, Any]:
    """One run; a record with the final regret, the fallbacks and the seconds."""
    from bayesopt import Optimizer, minimize
    from bayesopt.space import Space

    task, objective, budget = make_objective(name)
    counter = _BoundedFits()
    logger = logging.getLogger("bayesopt.proposal")
    level = logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    t0 = time.perf_counter()
    if method == "random":
        import numpy as np

        space = Space(task.space)
        values = []
        for k in range(budget):
            u = np.random.default_rng([seed, k]).random(len(space)).tolist()
            values.append(objective(space.from_unit(u)))
        best, fallbacks = min(values), 0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt: Optimizer = minimize(
                objective, task.space, n_trials=budget, seed=seed, progress=False
            )
        best = opt.best_trial.value
        fallbacks = sum(t.attrs.get("source") == "fallback" for t in opt.trials)
    logger.removeHandler(counter)
    logger.setLevel(level)
    return {
        "task": name,
        "seed": seed,
        "method": method,
        "regret": task.regret(best),
        "fallbacks": fallbacks,
        "bounded_fits": counter.count,
        "seconds": round(time.perf_counter() - t0, 1),
    }


class _BoundedFits(logging.Handler):
    """Counts the training sets in which outcomes were clipped (``training_data``'s log)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("outcomes bounded"):
            self.count += 1


def summarize(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median regret and total fallbacks per (task, method)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["task"], r["method"]), []).append(r)
    return [
        {
            "task": task,
            "method": method,
            "seeds": len(rs),
            "median_regret": statistics.median(r["regret"] for r in rs),
            "fallbacks": sum(r["fallbacks"] for r in rs),
        }
        for (task, method), rs in groups.items()
    ]


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", default="0-9", help="a range, e.g. 0-9")
    parser.add_argument("--method", default="bo", choices=["bo", "random"])
    parser.add_argument("--bad-fence", type=float, default=None)
    parser.add_argument("--good-fence", type=float, default=None)
    parser.add_argument("--out", default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    if args.bad_fence is not None or args.good_fence is not None:
        import surrogates.outcomes as outcomes

        if args.bad_fence is not None:
            outcomes.BAD_FENCE = args.bad_fence
        if args.good_fence is not None:
            outcomes.GOOD_FENCE = args.good_fence
    records = []
    for name in args.tasks:
        for seed in _seeds(args.seeds):
            record = run_one(name, seed, args.method)
            record.update(bad_fence=args.bad_fence, good_fence=args.good_fence)
            records.append(record)
            print(json.dumps(record), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")
    for row in summarize(records):
        regret = row["median_regret"]
        print(
            f"{row['task']:<22} {row['method']:<7} seeds={row['seeds']:<3} "
            f"median regret={regret:.3g} fallbacks={row['fallbacks']}"
            + ("" if math.isfinite(regret) else " (no feasible value)")
        )


if __name__ == "__main__":
    main()
