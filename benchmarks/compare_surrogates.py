"""Every surrogate in the same loop: simple regret and seconds per ask.

What is measured: for each task, surrogate and seed, ``Optimizer(surrogate=...,
acquisition="qlognei", seed=seed)`` with the library defaults (initial Sobol
design, acquisition-optimizer budget) gets the same budget of evaluations of
the same noise-free objective, and we record

* the simple regret of the best observed value after the last evaluation
  (``Task.regret``), and the best-so-far regret curve;
* the seconds of every ``ask`` (wall clock and this process's CPU time), and
  each trial's attributes: whether the point came from the Sobol design, the
  model or a fallback, the surrogate that was fitted (``auto`` records its
  choice), the fit seconds.

Default protocol (``python benchmarks/compare_surrogates.py``): every
registered surrogate on Branin (2-D, 30 evaluations), Hartmann-6 (6-D, 60) and
Hartmann-6 embedded in 25 dimensions (``hartmann6_d25``: 19 inert parameters,
60 evaluations, the budget of Hartmann-6 so the two rows differ only by the
inert dimensions), seeds 0..9. ``hmc_bnn`` -- the expensive one -- runs
seeds 0..2 and 40 evaluations on both Hartmann tasks (``--reduced``,
``--reduced-seeds``, ``--reduced-budget``); its rows say so, and a second table
compares every surrogate at the reduced budget (best-so-far regret after that
many evaluations, same seeds). When ``auto`` runs, the gap between its median
regret and the best single surrogate's is printed in log10 units.

The printed table has, per task and surrogate, the evaluations, seeds, the
median and interquartile range (25th..75th percentile) of the final regret over
seeds, the median seconds of a model-based ask (Sobol asks excluded), the
median CPU seconds of one, and the number of fallback proposals. Everything,
per-run records included, goes to ``benchmarks/results/compare_surrogates.json``
and the tables to the ``.md`` beside it.

Run from the repository root::

    .venv/bin/python benchmarks/compare_surrogates.py --workers 2       # full default run
    .venv/bin/python benchmarks/compare_surrogates.py --surrogates gp ibnn --seeds 0 1 2
    .venv/bin/python benchmarks/compare_surrogates.py --quick           # smoke test, seconds

``--quick``: one seed, gp only (unless ``--surrogates``), 8/8/16 evaluations
and a small acquisition-optimizer budget -- it checks the plumbing, its numbers
mean nothing. Torch threads per process default to ``cpu_count // workers``.

Resuming: every finished run is appended to a run log
(``compare_surrogates.runs.jsonl`` beside the output, ``--log``), and the same
command run again skips the runs it finds there, so a run of several hours can
be stopped and continued, or split over machines (append the other machine's
log to this one; each record names its host, and the tables say which
machine measured which seconds). ``--fresh`` starts a new log.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:  # run as a script: make `bayesopt` and `benchmarks` importable
    sys.path.insert(0, str(_REPO_ROOT))

from benchmarks.compare_optuna import Session  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    RunLog,
    add_parallel_arguments,
    configure_threads,
    default_threads,
    host_info,
    write_document,
)
from benchmarks.surrogate_summary import (  # noqa: E402  (re-exported)
    auto_gaps,
    format_markdown,
    format_table,
    regret_at,
    report,
    summarize_runs,
)

__all__ = [
    "DEFAULT_BUDGETS",
    "QUICK_BUDGETS",
    "REDUCED",
    "RUN_KEY",
    "SurrogateSession",
    "auto_gaps",
    "format_markdown",
    "format_table",
    "main",
    "regret_at",
    "report",
    "run_one",
    "summarize_runs",
]

#: Task registry name -> default number of evaluations.
DEFAULT_BUDGETS: dict[str, int] = {"branin": 30, "hartmann6": 60, "hartmann6_d25": 60}
#: Evaluations per task in ``--quick`` mode (past each task's initial design).
QUICK_BUDGETS: dict[str, int] = {"branin": 8, "hartmann6": 8, "hartmann6_d25": 16}
#: Surrogates run with fewer seeds and evaluations by default, and how.
REDUCED: dict[str, Any] = {
    "surrogates": ["hmc_bnn"],
    "seeds": 3,
    "budgets": {"hartmann6": 40, "hartmann6_d25": 40},
}
#: Acquisition-optimizer budget of ``--quick`` (``acquisitions.optimize.OptimizerSettings``).
QUICK_SETTINGS: dict[str, Any] = {"num_restarts": 2, "raw_samples": 64, "maxiter": 50}
ACQUISITION = "qlognei"
#: Record fields that identify a run in the run log (a rerun skips logged runs).
RUN_KEY = ("task", "surrogate", "seed", "budget", "options", "settings")
#: Rough cost of a run per evaluation relative to ``gp``: the costly runs start first.
RELATIVE_COST: dict[str, float] = {"hmc_bnn": 100.0, "auto": 10.0, "dkl": 4.0, "ensemble": 4.0}
DEFAULT_OUTPUT = _REPO_ROOT / "benchmarks" / "results" / "compare_surrogates.json"


# --------------------------------------------------------------------------- one run


class SurrogateSession(Session):
    """Our ``Optimizer`` with one surrogate; keeps the attributes of every asked trial.

    Args:
        task: A ``benchmarks`` task.
        surrogate: A surrogate registry name.
        seed: The study seed.
        options: Surrogate constructor options.
        settings: ``OptimizerSettings`` fields, or ``None`` for the defaults.
    """

    def __init__(
        self,
        task: Any,
        surrogate: str,
        seed: int,
        options: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        from acquisitions.optimize import OptimizerSettings
        from bayesopt import Optimizer

        super().__init__()
        self.opt = Optimizer(
            dict(task.space),
            surrogate=surrogate,
            surrogate_options=dict(options or {}),
            acquisition=ACQUISITION,
            direction=task.direction,
            seed=seed,
            optimizer_settings=OptimizerSettings(**settings) if settings else None,
        )
        #: Scalar attributes of each asked trial (source, surrogate, fit_seconds, ...).
        self.attrs: list[dict[str, Any]] = []

    def _ask(self) -> tuple[Any, dict[str, Any]]:
        trial = self.opt.ask()
        self.attrs.append(
            {k: v for k, v in trial.attrs.items() if isinstance(v, (str, int, float, bool))}
        )
        return trial, dict(trial.params)

    def tell(self, handle: Any, value: float) -> None:  # noqa: D102
        self.opt.tell(handle, value)

    def close(self) -> None:  # noqa: D102
        self.opt.close()


def run_one(
    task_name: str,
    surrogate: str,
    seed: int,
    budget: int,
    options: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One optimization run of ``surrogate`` on a registered task; a JSON-ready record.

    Args:
        task_name: A key of ``benchmarks.TASKS``.
        surrogate: A surrogate registry name.
        seed: Seed of the optimizer (the tasks are noise-free).
        budget: Number of evaluations.
        options: Surrogate constructor options.
        settings: Acquisition-optimizer settings (``None``: the defaults).

    Returns:
        ``task``, ``surrogate`` (also as ``optimizer``), ``seed``, ``budget``,
        ``options``, ``settings``, ``best_value``, ``optimal_value``,
        ``regret``, ``regret_curve`` (best so far after each evaluation),
        ``values``, ``ask_seconds``, ``ask_cpu_seconds``, ``attrs`` (per ask),
        ``wall_seconds`` and ``host`` (``harness.host_info``).
    """
    from benchmarks import make_task

    task = make_task(task_name)
    start = time.perf_counter()
    session = SurrogateSession(task, surrogate, seed, options, settings)
    values: list[float] = []
    try:
        for _ in range(budget):
            handle, params = session.ask()
            value = float(task(params))
            session.tell(handle, value)
            values.append(value)
    finally:
        session.close()
    pick: Callable[[float, float], float] = max if task.direction == "maximize" else min
    curve: list[float] = []
    best = math.nan
    for value in values:
        best = value if math.isnan(best) else pick(best, value)
        curve.append(float(task.regret(best)))
    return {
        **_job_fields((task_name, surrogate, seed, budget, options, settings)),
        "optimizer": surrogate,
        "best_value": best,
        "optimal_value": float(task.optimal_value),
        "regret": curve[-1],
        "regret_curve": curve,
        "values": values,
        "ask_seconds": session.ask_seconds,
        "ask_cpu_seconds": session.ask_cpu_seconds,
        "attrs": session.attrs,
        "wall_seconds": time.perf_counter() - start,
        "host": host_info(),
    }


# --------------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from benchmarks import TASKS
    from surrogates import available_surrogates

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = available_surrogates()
    parser.add_argument(
        "--surrogates",
        nargs="+",
        choices=names,
        default=None,
        help=f"surrogates to run (default: all, {' '.join(names)}; --quick: gp)",
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=sorted(TASKS),
        default=None,
        help=f"tasks (default: {' '.join(DEFAULT_BUDGETS)})",
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=None, help="seeds (default: 0..9; --quick: 0)"
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="evaluations per run for every task (default: "
        + ", ".join(f"{t} {b}" for t, b in DEFAULT_BUDGETS.items())
        + ")",
    )
    parser.add_argument(
        "--reduced",
        nargs="*",
        choices=names,
        default=None,
        help=f"surrogates run with fewer seeds/evaluations "
        f"(default: {' '.join(REDUCED['surrogates'])})",
    )
    parser.add_argument(
        "--reduced-seeds",
        type=int,
        default=REDUCED["seeds"],
        help="seeds of the reduced surrogates: the first N of --seeds "
        f"(default: {REDUCED['seeds']})",
    )
    parser.add_argument(
        "--reduced-budget",
        nargs="*",
        default=None,
        metavar="TASK=N",
        help="evaluations of the reduced surrogates per task (default: "
        + ", ".join(f"{t}={b}" for t, b in REDUCED["budgets"].items())
        + "; other tasks keep their budget)",
    )
    parser.add_argument(
        "--options",
        type=json.loads,
        default={},
        help='surrogate options as JSON, e.g. \'{"ensemble": {"members": 5}}\'',
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 seed, gp, a few evaluations, small acquisition-optimizer budget",
    )
    parser.add_argument(
        "--log",
        type=Path,
        default=None,
        help="run log (JSON lines): finished runs are appended, and a rerun skips the runs "
        "it finds there (default: the output path with suffix .runs.jsonl)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start a new run log (the old one is renamed to .jsonl.old) instead of resuming",
    )
    add_parallel_arguments(
        parser, DEFAULT_OUTPUT, "JSON output path; the Markdown tables go beside it"
    )
    args = parser.parse_args(argv)
    # Default order: gp (the reference) first, auto (which picks among the others) last.
    ordered = sorted(names, key=lambda n: (n != "gp", n == "auto", n))
    args.surrogates = args.surrogates or (["gp"] if args.quick else ordered)
    args.tasks = args.tasks or list(DEFAULT_BUDGETS)
    args.seeds = args.seeds if args.seeds is not None else ([0] if args.quick else list(range(10)))
    args.reduced = REDUCED["surrogates"] if args.reduced is None else args.reduced
    args.log = args.log or args.output.with_suffix(".runs.jsonl")
    if args.budget is not None and args.budget < 1:
        parser.error(f"--budget must be at least 1, got {args.budget}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.reduced_seeds < 1:
        parser.error(f"--reduced-seeds must be at least 1, got {args.reduced_seeds}")
    defaults = QUICK_BUDGETS if args.quick else DEFAULT_BUDGETS
    args.budgets = {}
    for task in args.tasks:
        budget = args.budget or defaults.get(task)
        if budget is None:
            parser.error(f"task {task!r} has no default budget; give --budget")
        args.budgets[task] = budget
    reduced = dict(REDUCED["budgets"])
    for item in args.reduced_budget or []:
        task, _, n = item.partition("=")
        if task not in TASKS or not n.isdigit() or int(n) < 1:
            parser.error(f"--reduced-budget expects TASK=N with a known task, got {item!r}")
        reduced[task] = int(n)
    args.reduced_budgets = {t: min(reduced.get(t, b), b) for t, b in args.budgets.items()}
    unknown = sorted(set(args.options) - set(names))
    if not isinstance(args.options, dict) or unknown:
        parser.error(f"--options must map surrogate names to options, got {args.options!r}")
    return args


def init_worker(threads: int, surrogates: Sequence[str]) -> None:
    """Process start-up: set threads, import every requested surrogate before any timing."""
    configure_threads(threads)
    import benchmarks  # noqa: F401  (registers the tasks)
    from surrogates import get_surrogate

    for name in surrogates:
        get_surrogate(name)


def _jobs(args: argparse.Namespace) -> list[tuple]:
    settings = QUICK_SETTINGS if args.quick else None
    jobs = []
    for task in args.tasks:
        for name in args.surrogates:
            reduced = name in args.reduced and not args.quick
            seeds = args.seeds[: args.reduced_seeds] if reduced else args.seeds
            budget = args.reduced_budgets[task] if reduced else args.budgets[task]
            for seed in seeds:
                jobs.append((task, name, seed, budget, args.options.get(name, {}), settings))
    return jobs


def _job_fields(job: tuple) -> dict[str, Any]:
    """A job tuple as the record fields of ``RUN_KEY``."""
    task, surrogate, seed, budget, options, settings = job
    return {
        "task": task,
        "surrogate": surrogate,
        "seed": seed,
        "budget": budget,
        "options": dict(options or {}),
        "settings": dict(settings) if settings else None,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the comparison, print the tables, write the JSON and the Markdown.

    Args:
        argv: Command-line arguments (``sys.argv[1:]`` when None).

    Returns:
        The JSON document: ``config``, ``summary`` rows, ``at_reduced_budget``,
        ``auto_gaps`` and per-run ``runs``.
    """
    args = _parse_args(argv)
    threads = args.threads or default_threads(args.workers)
    jobs = _jobs(args)
    print(
        f"{len(jobs)} runs: tasks={args.budgets} surrogates={args.surrogates} seeds={args.seeds}; "
        f"{args.workers} worker(s) x {threads} torch thread(s)",
        flush=True,
    )
    reduced = [n for n in args.surrogates if n in args.reduced and not args.quick]
    if reduced:
        print(
            f"reduced: {reduced} run seeds {args.seeds[: args.reduced_seeds]} with budgets "
            f"{args.reduced_budgets}",
            flush=True,
        )

    log = RunLog(args.log, RUN_KEY)
    if args.fresh and args.log.exists():
        args.log.replace(args.log.with_suffix(".jsonl.old"))
    logged = log.load()
    keys = [log.key(_job_fields(job)) for job in jobs]
    records = [logged[k] for k in keys if k in logged]
    todo = [job for job, k in zip(jobs, keys, strict=True) if k not in logged]
    if records:
        print(f"resuming: {len(records)} runs found in {args.log}, {len(todo)} to run", flush=True)

    def finished(record: dict[str, Any]) -> None:
        log.append(record)
        records.append(record)
        _report_progress(record)

    start = time.perf_counter()
    if args.workers == 1 or len(todo) <= 1:
        if todo:
            init_worker(threads, args.surrogates)
        for job in todo:
            finished(run_one(*job))
    else:
        with ProcessPoolExecutor(
            max_workers=args.workers,
            mp_context=get_context("spawn"),
            initializer=init_worker,
            initargs=(threads, args.surrogates),
        ) as pool:
            # The costly runs first, so they do not finish alone at the end.
            order = sorted(todo, key=lambda j: -RELATIVE_COST.get(j[1], 1.0) * j[3])
            for future in as_completed([pool.submit(run_one, *job) for job in order]):
                finished(future.result())
    total = time.perf_counter() - start

    order = {name: i for i, name in enumerate(args.surrogates)}
    records.sort(key=lambda r: (args.tasks.index(r["task"]), order[r["surrogate"]], r["seed"]))
    rows = summarize_runs(records)
    at_reduced = {
        task: {
            "budget": args.reduced_budgets[task],
            "regret_median": regret_at(
                [r for r in records if r["seed"] in args.seeds[: args.reduced_seeds]],
                task,
                args.reduced_budgets[task],
            ),
        }
        for task in args.tasks
        if reduced and args.reduced_budgets[task] < args.budgets[task]
    }
    gaps = auto_gaps(rows)
    text = report(rows, at_reduced, gaps, reduced)
    print()
    print(text)
    print(f"\ntotal wall time {total:.1f} s")

    import torch

    document = {
        "config": {
            "tasks": args.tasks,
            "surrogates": args.surrogates,
            "seeds": args.seeds,
            "budgets": args.budgets,
            "reduced": {
                "surrogates": reduced,
                "seeds": args.seeds[: args.reduced_seeds],
                "budgets": args.reduced_budgets,
            },
            "options": args.options,
            "acquisition": ACQUISITION,
            "optimizer_settings": QUICK_SETTINGS if args.quick else "defaults",
            "quick": args.quick,
            "workers": args.workers,
            "torch_threads": threads,
            "torch_version": torch.__version__,
            "total_wall_seconds": total,
            "log": str(args.log),
            "runs_resumed": len(jobs) - len(todo),
        },
        "summary": rows,
        "at_reduced_budget": at_reduced,
        "auto_gaps": gaps,
        "runs": records,
    }
    write_document(document, args.output)
    md = args.output.with_suffix(".md")
    md.write_text(report(rows, at_reduced, gaps, reduced, markdown=True) + "\n")
    print(f"wrote {md}")
    return document


def _report_progress(rec: Mapping[str, Any]) -> None:
    print(
        f"  {rec['task']:<14} {rec['surrogate']:<13} seed {rec['seed']:>2}: "
        f"regret {rec['regret']:.3e}  ({rec['wall_seconds']:.1f} s)",
        flush=True,
    )


if __name__ == "__main__":
    main()
