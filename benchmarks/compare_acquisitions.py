"""Acquisitions under observation noise: true regret of the recommended point.

What is measured: for each acquisition and seed, ``Optimizer(surrogate="gp",
acquisition=..., seed=seed)`` gets ``--budget`` noisy evaluations of a task
(Hartmann-6 by default, noise standard deviation ``--noise-frac`` times the
function's range, 0.1 by default: 0.33). Seeds are paired: seed ``s`` draws
the same noise stream and the same initial design for every acquisition. At
the end every method is judged by the same rule: the evaluated point with the
best posterior mean (``Optimizer.recommend``), scored by its true, noise-free
regret. Under noise the best *observed* value is mostly luck, which is why
the noisy-EI family exists.

Printed per acquisition: median and quartiles of the true regret, median
seconds per ask, and the paired comparison with ``ei`` (seeds won, and the
two-sided Wilcoxon signed-rank p-value). Records go to
``benchmarks/results/compare_acquisitions.json``.

Run from the repository root::

    .venv/bin/python benchmarks/compare_acquisitions.py --workers 2   # 5 acquisitions x 10 seeds
    .venv/bin/python benchmarks/compare_acquisitions.py --quick       # plumbing check, seconds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:  # run as a script: make `bayesopt` and `benchmarks` importable
    sys.path.insert(0, str(_REPO_ROOT))

from benchmarks.harness import (  # noqa: E402
    Column,
    add_parallel_arguments,
    configure_threads,
    default_threads,
    text_table,
    write_document,
)

__all__ = ["DEFAULT_ACQUISITIONS", "main", "paired_with", "run_one", "summarize"]

DEFAULT_ACQUISITIONS = ("qlognei", "decision_nei", "ei", "ucb", "ts")
#: Hartmann-6 ranges from its minimum -3.32237 to about 0.
RANGES = {"hartmann6": 3.32237, "branin": 308.13}
DEFAULT_OUTPUT = _REPO_ROOT / "benchmarks" / "results" / "compare_acquisitions.json"


def run_one(
    task_name: str, acquisition: str, seed: int, budget: int, noise_std: float, quick: bool
) -> dict[str, Any]:
    """One optimization; returns the true regret of the recommended point and timings.

    The record also holds the recommended point (``recommended``) and its
    noisy observed value (``observed_value``), so the regret can be checked.
    """
    from acquisitions.optimize import OptimizerSettings
    from bayesopt import Optimizer
    from benchmarks.base import make_task

    task = make_task(task_name, noise_std=noise_std, seed=seed)
    settings = OptimizerSettings(num_restarts=2, raw_samples=64) if quick else None
    opt = Optimizer(
        task.space,
        acquisition=acquisition,
        direction=task.direction,
        seed=seed,
        **({"optimizer_settings": settings} if settings else {}),
    )
    seconds = []
    for _ in range(budget):
        t0 = time.perf_counter()
        trial = opt.ask()
        seconds.append(time.perf_counter() - t0)
        opt.tell(trial.id, task(trial.params))
    recommended = opt.recommend()
    return {
        "task": task_name,
        "acquisition": acquisition,
        "seed": seed,
        "budget": budget,
        "noise_std": noise_std,
        "regret": task.regret(task.evaluate(recommended.params)),
        "recommended": dict(recommended.params),
        "observed_value": recommended.value,
        "seconds_per_ask": statistics.median(seconds),
        "fallbacks": sum(1 for t in opt.trials if t.attrs.get("source") == "fallback"),
    }


def paired_with(records: Sequence[Mapping[str, Any]], a: str, b: str) -> dict[str, Any]:
    """Seeds where ``a`` beat ``b`` (lower regret) and the Wilcoxon signed-rank p-value."""
    from scipy.stats import wilcoxon

    by = {(r["acquisition"], r["seed"]): r["regret"] for r in records}
    seeds = sorted({s for (acq, s) in by if acq == a} & {s for (acq, s) in by if acq == b})
    diffs = [by[(a, s)] - by[(b, s)] for s in seeds]
    wins = sum(d < 0 for d in diffs)
    p = float(wilcoxon(diffs).pvalue) if len(diffs) >= 2 and any(diffs) else float("nan")
    return {"against": b, "seeds": len(seeds), "wins": wins, "p_value": p}


def summarize(records: Sequence[Mapping[str, Any]], baseline: str = "ei") -> list[dict]:
    """Per acquisition: true-regret median and quartiles, s/ask, paired result vs ``baseline``."""
    rows = []
    for acq in dict.fromkeys(r["acquisition"] for r in records):
        regrets = sorted(r["regret"] for r in records if r["acquisition"] == acq)
        quart = statistics.quantiles(regrets, n=4) if len(regrets) > 1 else regrets * 3
        row = {
            "acquisition": acq,
            "seeds": len(regrets),
            "median": statistics.median(regrets),
            "q25": quart[0],
            "q75": quart[2],
            "seconds_per_ask": statistics.median(
                r["seconds_per_ask"] for r in records if r["acquisition"] == acq
            ),
        }
        if acq != baseline and any(r["acquisition"] == baseline for r in records):
            row["vs"] = paired_with(records, acq, baseline)
        rows.append(row)
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of ``summarize``'s rows."""

    def paired(r: Mapping[str, Any]) -> str:
        vs = r.get("vs")
        return f"{vs['wins']}/{vs['seeds']}, p={vs['p_value']:.3f}" if vs else ""

    columns: list[Column] = [
        ("acquisition", "<", lambda r: r["acquisition"]),
        ("seeds", ">", lambda r: str(r["seeds"])),
        ("regret med", ">", lambda r: f"{r['median']:.3e}"),
        ("q25", ">", lambda r: f"{r['q25']:.2e}"),
        ("q75", ">", lambda r: f"{r['q75']:.2e}"),
        ("s/ask", ">", lambda r: f"{r['seconds_per_ask']:.2f}"),
        ("paired vs ei (wins, p)", "<", paired),
    ]
    return text_table(columns, rows)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--acquisitions", nargs="+", default=list(DEFAULT_ACQUISITIONS))
    parser.add_argument("--task", choices=sorted(RANGES), default="hartmann6")
    parser.add_argument("--noise-frac", type=float, default=0.1)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    add_parallel_arguments(parser, DEFAULT_OUTPUT)
    parser.add_argument("--quick", action="store_true", help="1 seed, 8 evaluations, tiny budget")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.budget = args.seeds[:1], min(args.budget, 8)
    noise_std = args.noise_frac * RANGES[args.task]
    jobs = [
        (args.task, acq, seed, args.budget, noise_std, args.quick)
        for seed in args.seeds
        for acq in args.acquisitions
    ]
    threads = args.threads or default_threads(args.workers)
    print(
        f"{len(jobs)} runs: {args.task} with noise sd {noise_std:.3g}, {args.budget} evaluations, "
        f"acquisitions {args.acquisitions}, seeds {args.seeds}; {args.workers} worker(s)"
    )
    records = []
    if args.workers == 1:
        configure_threads(threads)
        for job in jobs:
            records.append(run_one(*job))
            _progress(records[-1])
    else:
        ctx = get_context("spawn")
        with ProcessPoolExecutor(
            args.workers, mp_context=ctx, initializer=configure_threads, initargs=(threads,)
        ) as pool:
            for fut in as_completed([pool.submit(run_one, *job) for job in jobs]):
                records.append(fut.result())
                _progress(records[-1])
    rows = summarize(records)
    print()
    print(format_table(rows))
    document = {"settings": vars(args) | {"output": str(args.output)}, "rows": rows}
    document["records"] = records
    return write_document(document, args.output)


def _progress(rec: Mapping[str, Any]) -> None:
    print(
        f"  {rec['acquisition']:12s} seed {rec['seed']:2d}: true regret {rec['regret']:.3e}"
        f"  ({rec['seconds_per_ask']:.2f} s/ask)",
        flush=True,
    )


if __name__ == "__main__":
    main()
