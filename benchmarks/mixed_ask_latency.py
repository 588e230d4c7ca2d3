"""Latency of one ``ask`` on a mixed space: a 20-level categorical and 4 floats.

What is measured: ``n`` observations (default 50) of a smooth test function
whose optimum moves with the category are recorded with ``opt.add`` at seeded
random points; then ``--repeats`` asks are timed, each told before the next
(so repeat ``r`` sees ``n + r`` observations). The GP is the categorical-aware
``MixedSingleTaskGP``; the acquisition optimizer enumerates the 20 levels
with a continuous search for each (``acquisitions.optimize``). Prints the
median wall-clock and CPU seconds per ask and the median GP fit seconds.

Run from the repository root::

    .venv/bin/python benchmarks/mixed_ask_latency.py
    .venv/bin/python benchmarks/mixed_ask_latency.py --acquisition logei --observations 100
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:  # run as a script: make `bayesopt` importable
    sys.path.insert(0, str(_REPO_ROOT))

__all__ = ["LEVELS", "main", "mixed_space", "objective"]

LEVELS = 20
FLOATS = 4


def mixed_space() -> dict[str, Any]:
    """4 floats in ``[0, 1]`` and a categorical ``c`` with ``LEVELS`` levels."""
    from bayesopt import Categorical, Float

    space: dict[str, Any] = {f"x{i}": Float(0.0, 1.0) for i in range(FLOATS)}
    space["c"] = Categorical([f"level{j}" for j in range(LEVELS)])
    return space


def objective(params: dict[str, Any]) -> float:
    """A quadratic bowl whose centre and offset depend on the level (minimum 0 at level0)."""
    j = int(params["c"].removeprefix("level"))
    centre = 0.1 * (j % 7) + 0.2
    return sum((params[f"x{i}"] - centre) ** 2 for i in range(FLOATS)) + 0.05 * j


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Time asks on the mixed space and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--surrogate", default="gp")
    parser.add_argument("--acquisition", default="qlognei")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from bayesopt import Optimizer

    opt = Optimizer(
        mixed_space(), surrogate=args.surrogate, acquisition=args.acquisition, seed=args.seed
    )
    rng = random.Random(args.seed)
    for _ in range(args.observations):
        params = {f"x{i}": rng.random() for i in range(FLOATS)}
        params["c"] = f"level{rng.randrange(LEVELS)}"
        opt.add(params, objective(params))
    walls, cpus, fits = [], [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        trial = opt.ask()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        fits.append(float(trial.attrs.get("fit_seconds", float("nan"))))
        opt.tell(trial.id, objective(trial.params))
    result = {
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "fit_s": statistics.median(fits),
    }
    print(
        f"{args.surrogate} + {args.acquisition}, {FLOATS} floats + {LEVELS}-level categorical, "
        f"{args.observations} observations, {args.repeats} asks: median "
        f"{result['wall_s']:.2f} s wall, {result['cpu_s']:.2f} s CPU per ask "
        f"(GP fit {result['fit_s']:.2f} s)"
    )
    return result


if __name__ == "__main__":
    main()
