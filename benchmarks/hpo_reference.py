"""Frozen reference values of the sklearn HPO tasks (``benchmarks.hpo.REFERENCES``).

Bayesmark normalizes a run's loss between the best value anyone found and the
median of random search; both depend on who was compared, so they are frozen
here once per task from a seeded random search over the task's own scales
(log, logit), or from full enumeration when the space has at most ``n``
points (then the reference is the exact optimum)::

    python -m benchmarks.hpo_reference hpo_dt_breast hpo_knn_iris --n 1000

prints one ``REFERENCES`` line per task (paste them into ``benchmarks/hpo_data.py``)
and the seconds per evaluation (process CPU time, one thread).
``python -m benchmarks.hpo_reference --timing --n 5`` instead prints the CPU
seconds per evaluation of every (model, dataset) pair (mean / max over ``n``
random points): the ``EVAL_SECONDS`` table.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np

from bayesopt.space import Space
from benchmarks.base import make_task


def reference(name: str, n: int, seed: int = 0) -> dict[str, float | int | bool]:
    """Best and median loss of ``n`` random points (or of the whole grid) of a task.

    Args:
        name: An ``hpo_...`` task name.
        n: Random evaluations (the whole grid when it has at most ``n`` points).
        seed: Seed of the uniform draws on the unit cube.

    Returns:
        ``{"best", "median", "n", "exact", "params", "failed", "cpu_seconds"}``:
        ``params`` is the point of ``best`` (the first one on ties),
        ``cpu_seconds`` the mean per evaluation.
    """
    task = make_task(name)
    space = Space(task.space)
    exact = space.n_combinations() <= n
    if exact:
        grids = [[p.decode(u) for u in p.grid()] for p in space.params.values()]
        points = [dict(zip(space.names, v, strict=True)) for v in itertools.product(*grids)]
    else:
        rng = np.random.default_rng(seed)
        points = [space.from_unit(rng.uniform(size=len(space))) for _ in range(n)]
    task(points[0])  # imports and data loading stay out of the timing
    start = time.process_time()
    values = np.array([task(p) for p in points])
    seconds = (time.process_time() - start) / len(points)
    finite = values[np.isfinite(values)]
    best = int(np.nanargmin(values))
    return {
        "best": float(values[best]),
        "median": float(np.median(finite)),
        "n": len(points),
        "exact": bool(exact),
        "params": points[best],
        "failed": int(len(values) - len(finite)),
        "cpu_seconds": seconds,
    }


def timing(n: int, seed: int = 0) -> dict[tuple[str, str], tuple[float, float]]:
    """CPU seconds per evaluation of every (model, dataset) pair at ``n`` random points.

    Returns:
        ``{(model, dataset): (mean, max)}``.
    """
    from benchmarks.hpo import DATASETS, MODELS, SklearnTask

    out = {}
    for model in MODELS:
        for dataset in DATASETS:
            task = SklearnTask(model, dataset)
            space = Space(task.space)
            rng = np.random.default_rng(seed)
            points = [space.from_unit(rng.uniform(size=len(space))) for _ in range(n)]
            task(points[0])  # warm-up: imports, data, thread-pool scan
            seconds = []
            for params in points:
                start = time.process_time()
                task(params)
                seconds.append(time.process_time() - start)
            out[(model, dataset)] = (float(np.mean(seconds)), float(np.max(seconds)))
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: print the ``REFERENCES`` lines of the named tasks."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="*", help="hpo_<model>_<dataset>[_<metric>] names")
    parser.add_argument("--timing", action="store_true", help="time every pair instead")
    parser.add_argument("--n", type=int, default=1000, help="random evaluations per task")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.timing:
        from benchmarks.hpo import DATASETS

        table = timing(args.n, args.seed)
        print("| model | " + " | ".join(DATASETS) + " |")
        print("|---" * (len(DATASETS) + 1) + "|")
        for model in dict.fromkeys(m for m, _ in table):
            cells = [f"{table[(model, d)][0]:.3f} / {table[(model, d)][1]:.3f}" for d in DATASETS]
            print(f"| {model} | " + " | ".join(cells) + " |")
        print("EVAL_SECONDS = " + repr({k: round(v[0], 3) for k, v in table.items()}))
        return
    for name in args.tasks:
        task = make_task(name)
        ref = reference(name, args.n, args.seed)
        key = (task.model, task.dataset, task.metric)
        print(
            f"    {key!r}: ({ref['best']!r}, {ref['median']!r}, {ref['n']}, {ref['exact']}, "
            f"{ref['params']!r}),  # {ref['cpu_seconds']:.3f} s/eval, {ref['failed']} non-finite",
            flush=True,
        )
        assert math.isfinite(ref["best"])


if __name__ == "__main__":
    main()
