"""Latency of one ``ask`` as the number of observations grows (6-D problem).

What is measured: the wall-clock seconds of a single proposal after ``n``
evaluations have been recorded, for our default optimizer
(``Optimizer(surrogate="gp", acquisition="qlognei")``) and Optuna's
``GPSampler(n_startup_trials=10)`` -- the same settings as
``benchmarks/compare_optuna.py``. The ``n`` observations are Hartmann-6 values at
scrambled Sobol points of ``[0, 1]^6`` (the same points for both), recorded with
``opt.add(params, value)`` for ours and ``study.add_trial(create_trial(...))``
for Optuna. Each size is then timed over ``--repeats`` asks per optimizer,
interleaved between the optimizers; each asked point is evaluated and told
before the next ask, so repeat ``r`` sees ``n + r`` observations and no pending
point. The median seconds per ask -- wall clock, and CPU time of the process
(``time.process_time``, which other processes on a shared machine hardly
inflate) -- are printed per size and optimizer, with the torch thread count;
everything also goes to ``benchmarks/results/ask_latency.json``.

Run from the repository root::

    .venv/bin/python benchmarks/ask_latency.py                   # sizes 50 200 1000, 3 repeats
    .venv/bin/python benchmarks/ask_latency.py --sizes 50 200 --repeats 5
    .venv/bin/python benchmarks/ask_latency.py --threads 1

At 1000 observations one ask takes seconds to tens of seconds on two CPU cores
(an exact GP is cubic in ``n``); the default run is meant to stay under about
ten minutes. Optuna's ``GPSampler`` runs its fit and acquisition optimization
with one torch thread whatever ``--threads`` says.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:  # run as a script: make `bayesopt` and `benchmarks` importable
    sys.path.insert(0, str(_REPO_ROOT))

from benchmarks.compare_optuna import (  # noqa: E402
    OPTUNA_SAMPLERS,
    OUR_SETTINGS,
    OURS,
    init_process,
    load_task,
    open_session,
)
from benchmarks.harness import Column, text_table, write_document  # noqa: E402

__all__ = ["DEFAULT_SIZES", "design_points", "main", "time_asks"]

DEFAULT_SIZES = (50, 200, 1000)
DEFAULT_OUTPUT = _REPO_ROOT / "benchmarks" / "results" / "ask_latency.json"


def design_points(space: Mapping[str, Any], n: int, seed: int) -> list[dict[str, float]]:
    """``n`` scrambled Sobol points of a box of ``Float`` parameters.

    Args:
        space: Parameter name -> bayesopt ``Float`` (linear or log scale).
        n: Number of points.
        seed: Seed of the scrambling.

    Returns:
        ``n`` parameter dicts in the user's units.

    Raises:
        TypeError: If a parameter is not a ``Float``.
    """
    from scipy.stats import qmc

    for name, param in space.items():
        if getattr(param, "kind", None) != "float":
            raise TypeError(f"Parameter {name!r}: design points need Float, got {param!r}.")
    sobol = qmc.Sobol(d=len(space), scramble=True, seed=seed)
    unit = sobol.random_base2(max(0, math.ceil(math.log2(n))))[:n]
    points = []
    for row in unit:
        params = {}
        for (name, param), u in zip(space.items(), row):
            if param.log:
                lo, hi = math.log(param.low), math.log(param.high)
                params[name] = math.exp(lo + float(u) * (hi - lo))
            else:
                params[name] = param.low + float(u) * (param.high - param.low)
        points.append(params)
    return points


def time_asks(
    task: Any,
    optimizers: Sequence[str],
    points: Sequence[Mapping[str, float]],
    values: Sequence[float],
    repeats: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Record the same evaluations in every optimizer, then time ``repeats`` asks each.

    The asks of the optimizers are interleaved (one of each per repeat), so a
    load that comes and goes on a shared machine hits them alike. Each asked
    point is evaluated and told before the next ask.

    Args:
        task: The objective (its ``space`` and ``direction`` configure the optimizers).
        optimizers: ``OURS`` and/or names of ``OPTUNA_SAMPLERS``.
        points: Evaluated parameter dicts, recorded with ``add``.
        values: Their objective values.
        repeats: Asks timed per optimizer.
        seed: Seed of the optimizers.

    Returns:
        Per optimizer: ``ask_seconds`` and ``ask_cpu_seconds`` (one per repeat) and
        ``add_seconds`` (recording every point).
    """
    sessions = {name: open_session(name, task, seed) for name in optimizers}
    add_seconds = {}
    try:
        for name, session in sessions.items():
            start = time.perf_counter()
            for params, value in zip(points, values):
                session.add(params, value)
            add_seconds[name] = time.perf_counter() - start
        for _ in range(repeats):
            for session in sessions.values():
                handle, params = session.ask()
                session.tell(handle, float(task(params)))
    finally:
        for session in sessions.values():
            session.close()
    return {
        name: {
            "ask_seconds": s.ask_seconds,
            "ask_cpu_seconds": s.ask_cpu_seconds,
            "add_seconds": add_seconds[name],
        }
        for name, s in sessions.items()
    }


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=int,
        default=list(DEFAULT_SIZES),
        help="numbers of observations before the timed asks "
        f"(default: {' '.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument("--repeats", type=int, default=3, help="asks timed per size (default 3)")
    parser.add_argument(
        "--optimizers",
        nargs="+",
        choices=(OURS, *OPTUNA_SAMPLERS),
        default=[OURS, "optuna-gp"],
        help=f"optimizers to time (default: {OURS} optuna-gp)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the design points and optimizers (default 0)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: all cores)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"JSON output path (default: {DEFAULT_OUTPUT})",
    )
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.repeats < 1:
        parser.error("--sizes and --repeats must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Time the asks, print the table and write the JSON.

    Args:
        argv: Command-line arguments (``sys.argv[1:]`` when None).

    Returns:
        The JSON document: ``config`` and one ``results`` row per size and optimizer.
    """
    args = _parse_args(argv)
    threads = args.threads or (os.cpu_count() or 1)
    init_process(threads)
    import torch

    print(
        f"torch threads: {torch.get_num_threads()} (interop {torch.get_num_interop_threads()})"
        f"; inside a proposal: bayesopt {_bayesopt_proposal_threads()}, Optuna GPSampler 1"
        f"; repeats per size: {args.repeats}",
        flush=True,
    )
    task = load_task("hartmann6")
    results = []
    start_all = time.perf_counter()
    for n in args.sizes:
        points = design_points(task.space, n, args.seed)
        values = [float(task(p)) for p in points]
        timings = time_asks(task, args.optimizers, points, values, args.repeats, args.seed)
        for optimizer, timing in timings.items():
            row = {
                "n_observations": n,
                "optimizer": optimizer,
                "ask_seconds_median": statistics.median(timing["ask_seconds"]),
                "ask_cpu_seconds_median": statistics.median(timing["ask_cpu_seconds"]),
                **timing,
            }
            results.append(row)
            print(
                f"  n={n:<5d} {optimizer:<11} median {row['ask_seconds_median']:8.3f} s/ask, "
                f"cpu {row['ask_cpu_seconds_median']:8.3f} s/ask  (asks "
                f"{', '.join(f'{s:.3f}' for s in timing['ask_seconds'])}; "
                f"adds {timing['add_seconds']:.2f} s)",
                flush=True,
            )
    total = time.perf_counter() - start_all

    print()
    print(format_table(results, args.optimizers))
    print(f"\ntorch threads {torch.get_num_threads()}; total wall time {total:.1f} s")

    import optuna

    document = {
        "config": {
            "task": "hartmann6",
            "sizes": args.sizes,
            "repeats": args.repeats,
            "seed": args.seed,
            "optimizers": args.optimizers,
            "our_settings": OUR_SETTINGS,
            "optuna_samplers": {k: v for k, v in OPTUNA_SAMPLERS.items() if k in args.optimizers},
            "torch_threads": torch.get_num_threads(),
            "bayesopt_proposal_threads": _bayesopt_proposal_threads(),
            "optuna_version": optuna.__version__,
            "torch_version": torch.__version__,
            "total_wall_seconds": total,
        },
        "results": results,
    }
    return write_document(document, args.output)


def _bayesopt_proposal_threads() -> int | str:
    """Torch threads bayesopt sets while fitting and optimizing (its own setting)."""
    try:
        from bayesopt import proposal
    except ImportError:
        return "n/a"
    return getattr(proposal, "TORCH_THREADS", "process setting")


def format_table(results: Sequence[Mapping[str, Any]], optimizers: Sequence[str]) -> str:
    """Median seconds per ask: one line per size; wall-clock and CPU columns per optimizer."""
    by_size: dict[int, dict[str, Mapping[str, Any]]] = {}
    for r in results:
        by_size.setdefault(r["n_observations"], {})[r["optimizer"]] = r

    def seconds(name: str, key: str) -> Column:
        label = f"{name} {'wall' if key == 'ask_seconds_median' else 'cpu'}"

        def cell(row: Mapping[str, Any]) -> str:
            found = row["by"].get(name)
            return f"{found[key]:.3f}" if found else "-"

        return (label, ">", cell)

    columns: list[Column] = [("observations", ">", lambda row: str(row["n"]))]
    columns += [
        seconds(name, key)
        for key in ("ask_seconds_median", "ask_cpu_seconds_median")
        for name in optimizers
    ]
    rows = [{"n": n, "by": by_name} for n, by_name in by_size.items()]
    return text_table(columns, rows, title="median seconds per ask")


if __name__ == "__main__":
    main()
