"""Seconds of one ``ask()`` of the ``hmc_bnn`` surrogate at 100 observations in 6-D.

The observations are Hartmann-6 values at scrambled Sobol points of ``[0, 1]^6``,
recorded with ``opt.add``; then ``--repeats`` asks are timed (each asked point
is evaluated and told before the next). Printed per ask: wall-clock and process
CPU seconds (the latter hardly inflated by other processes on a shared
machine), the surrogate's fit seconds and its NUTS diagnostics. Torch runs
with one thread (``--threads``), as the optimizer's proposals do by default.

Run from the repository root::

    .venv/bin/python benchmarks/hmc_ask_time.py
    .venv/bin/python benchmarks/hmc_ask_time.py --n 100 --repeats 3 --option num_samples=300
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import time
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))


def main(argv: list[str] | None = None) -> float:
    """Run the timing and return the median wall-clock seconds per ask."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="observations before the timed asks")
    parser.add_argument("--repeats", type=int, default=2, help="timed asks")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--option", action="append", default=[], help="surrogate option key=value (repeatable)"
    )
    args = parser.parse_args(argv)

    import os

    os.environ["BAYESOPT_TORCH_THREADS"] = str(args.threads)
    import torch
    from botorch.test_functions import Hartmann
    from torch.quasirandom import SobolEngine

    from bayesopt import Float, Optimizer

    torch.set_num_threads(args.threads)
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        options[key] = ast.literal_eval(value)
    fn = Hartmann(dim=6)
    space = {f"x{i}": Float(0.0, 1.0) for i in range(6)}
    opt = Optimizer(
        space, surrogate="hmc_bnn", surrogate_options=options, direction="minimize", seed=args.seed
    )
    points = SobolEngine(6, scramble=True, seed=args.seed).draw(args.n, dtype=torch.float64)
    for row in points:
        opt.add({f"x{i}": float(v) for i, v in enumerate(row)}, float(fn(row)))
    walls = []
    for r in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        trial = opt.ask()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        walls.append(wall)
        x = torch.tensor([trial.params[f"x{i}"] for i in range(6)], dtype=torch.float64)
        opt.tell(trial, float(fn(x)))
        fit = trial.attrs.get("fit_seconds")
        diag = getattr(opt.surrogate, "last_diagnostics", {}) if hasattr(opt, "surrogate") else {}
        print(
            f"ask {r} at n={args.n + r}: {wall:.2f} s wall, {cpu:.2f} s CPU, "
            f"fit {fit} s, surrogate {trial.attrs.get('surrogate')}, {diag}"
        )
    median = statistics.median(walls)
    print(f"median seconds per ask at n={args.n} (d=6, {args.threads} thread): {median:.2f}")
    return median


if __name__ == "__main__":
    main()
