"""Simple regret of our default optimizer against Optuna's ``GPSampler``.

What is measured: for each task and seed, every optimizer gets the same budget
of evaluations of the same deterministic objective, and we record

* the simple regret of the best observed value (``best - optimum`` for a
  minimization task, via ``Task.regret``) after the last evaluation, and
* the seconds of every proposal (``Optimizer.ask`` for ours; ``study.ask``
  with the search space, which includes the sampling, for Optuna), both in
  wall-clock time and in CPU time of the process (``time.process_time``; on a
  shared machine, other processes inflate the first but hardly the second).

Optimizers compared:

* ``bayesopt`` -- ``Optimizer(surrogate="gp", acquisition="qlognei")`` with the
  default number of initial Sobol points;
* ``optuna-gp`` -- ``optuna.samplers.GPSampler(seed=seed, n_startup_trials=10)``;
* with ``--baselines`` also ``optuna-tpe`` (``TPESampler(seed=seed)``) and
  ``random`` (``RandomSampler(seed=seed)``) as cheap reference columns.

Default protocol: Branin with 30 evaluations and Hartmann-6 with 60 evaluations,
seeds 0..9. The printed table gives, per task and optimizer, the median and
25th/75th percentiles of the final simple regret over seeds, the median and mean
wall-clock seconds per ask and the median CPU seconds per ask (over all asks of
all seeds, the initial design included); the per-run records, including
best-so-far regret curves, go to ``benchmarks/results/compare_optuna.json``.

Run from the repository root::

    .venv/bin/python benchmarks/compare_optuna.py                 # full default run
    .venv/bin/python benchmarks/compare_optuna.py --workers 2     # seeds in 2 processes
    .venv/bin/python benchmarks/compare_optuna.py --tasks branin --seeds 0 1 2 --budget 20
    .venv/bin/python benchmarks/compare_optuna.py --baselines     # + Optuna TPE and random

Torch threads per process default to ``cpu_count // workers`` (1 with two
workers on two cores), so parallel seeds do not oversubscribe the cores; Optuna's
``GPSampler`` limits itself to one torch thread inside its own fit and
acquisition optimization whatever this setting is.
"""

from __future__ import annotations

import argparse
import importlib
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:  # run as a script: make `bayesopt` and `benchmarks` importable
    sys.path.insert(0, str(_REPO_ROOT))

from benchmarks.baselines import optuna_distributions  # noqa: E402  (shared with the runner)
from benchmarks.harness import (  # noqa: E402  (re-exported: older scripts import them from here)
    Column,
    add_parallel_arguments,
    configure_threads,
    default_threads,
    text_table,
    write_document,
)

__all__ = [
    "OUR_SETTINGS",
    "OptunaSession",
    "OurSession",
    "Session",
    "DETERMINISTIC_PAIR",
    "OURS",
    "OUR_VARIANTS",
    "OPTUNA_SAMPLERS",
    "TASKS",
    "configure_threads",
    "init_process",
    "load_task",
    "main",
    "make_optuna_sampler",
    "make_our_optimizer",
    "open_session",
    "optuna_distributions",
    "regret_columns",
    "run_one",
    "summarize",
    "write_document",
]

#: Name of our optimizer in tables and JSON.
OURS = "bayesopt"
#: The configuration of ours that is compared (the library's defaults).
OUR_SETTINGS: dict[str, Any] = {"surrogate": "gp", "acquisition": "qlognei"}
#: Our variants by table name -> ``Optimizer`` keyword arguments on top of ``OUR_SETTINGS``.
#: ``bayesopt`` is the default (the GP picks learned or no noise by leave-one-out density);
#: ``bayesopt-det`` is told the objective is noise-free (``deterministic=True``),
#: ``bayesopt-noisy`` always learns the noise, ``bayesopt-warp`` adds output warping,
#: ``bayesopt-analytic`` uses analytic log EI whenever the GP is noise-free (faster to
#: optimize, but 10 seeds of Hartmann-6 ended at a median regret of 1.8e-2 against 2.1e-4).
OUR_VARIANTS: dict[str, dict[str, Any]] = {
    OURS: {},
    "bayesopt-det": {"surrogate_options": {"deterministic": True}},
    "bayesopt-noisy": {"surrogate_options": {"deterministic": False}},
    "bayesopt-warp": {"surrogate_options": {"warp": True}},
    "bayesopt-analytic": {"acquisition_options": {"analytic_if_noise_free": True}},
}
#: Optuna samplers by table name -> (sampler class name, options besides the seed);
#: the first one is the main comparison. ``optuna-gp-det`` is GPSampler with
#: ``deterministic_objective=True``, the counterpart of ``bayesopt-det``.
OPTUNA_SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "optuna-gp": ("GPSampler", {"n_startup_trials": 10}),
    "optuna-gp-det": ("GPSampler", {"n_startup_trials": 10, "deterministic_objective": True}),
    "optuna-tpe": ("TPESampler", {}),
    "random": ("RandomSampler", {}),
}
#: The noise-free pair added by ``--deterministic``.
DETERMINISTIC_PAIR = ("bayesopt-det", "optuna-gp-det")
#: Task name -> (class name in ``benchmarks.synthetic``, default evaluation budget).
TASKS: dict[str, tuple[str, int]] = {"branin": ("Branin", 30), "hartmann6": ("Hartmann6", 60)}

DEFAULT_OUTPUT = _REPO_ROOT / "benchmarks" / "results" / "compare_optuna.json"

# Modules imported once per process before any timing, so that lazy imports
# (botorch, Optuna's GP modules) are not charged to the first model-based ask.
_WARMUP_MODULES = (
    "torch",
    "scipy.optimize",
    "botorch",
    "gpytorch",
    "optuna._gp.gp",
    "optuna._gp.acqf",
    "optuna._gp.optim_mixed",
    "bayesopt",
    "surrogates",
    "acquisitions",
)


# --------------------------------------------------------------------------- setup


def init_process(threads: int) -> None:
    """Worker start-up: set threads, silence Optuna, pre-import heavy modules."""
    configure_threads(threads)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for module in _WARMUP_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def load_task(name: str) -> Any:
    """Instantiate a benchmark task from ``benchmarks.synthetic`` by its table name.

    Args:
        name: A key of ``TASKS`` (``"branin"``, ``"hartmann6"``).

    Returns:
        The task: ``space`` (dict of bayesopt parameters), ``direction``,
        ``optimal_value``, ``__call__(params) -> float`` and ``regret(value)``.

    Raises:
        ValueError: If the name is not a known task.
    """
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; expected one of {sorted(TASKS)}.")
    synthetic = importlib.import_module("benchmarks.synthetic")
    return getattr(synthetic, TASKS[name][0])()


def make_our_optimizer(
    space: Mapping[str, Any],
    direction: str,
    seed: int,
    n_initial: int | None = None,
    variant: str = OURS,
) -> Any:
    """Our optimizer with the compared settings (``OUR_SETTINGS`` + ``OUR_VARIANTS[variant]``)."""
    from bayesopt import Optimizer

    return Optimizer(
        dict(space),
        direction=direction,
        seed=seed,
        n_initial=n_initial,
        **OUR_SETTINGS,
        **OUR_VARIANTS[variant],
    )


def make_optuna_sampler(name: str, seed: int) -> Any:
    """An Optuna sampler by its table name (see ``OPTUNA_SAMPLERS``).

    Raises:
        ValueError: If the name is not one of ``OPTUNA_SAMPLERS``.
    """
    import optuna

    if name not in OPTUNA_SAMPLERS:
        raise ValueError(
            f"Unknown Optuna sampler {name!r}; expected one of {sorted(OPTUNA_SAMPLERS)}."
        )
    cls_name, options = OPTUNA_SAMPLERS[name]
    return getattr(optuna.samplers, cls_name)(seed=seed, **options)


# --------------------------------------------------------------------------- sessions


class Session:
    """One optimizer on one task behind a common ask/tell/add interface.

    ``ask`` is timed in wall-clock seconds and in CPU seconds of this process
    (``time.process_time``, which other processes on a shared machine do not
    inflate); the timings accumulate in ``ask_seconds`` and ``ask_cpu_seconds``.
    """

    def __init__(self) -> None:
        self.ask_seconds: list[float] = []
        self.ask_cpu_seconds: list[float] = []

    def ask(self) -> tuple[Any, dict[str, Any]]:
        """Time one proposal; returns ``(handle, params)``."""
        wall, cpu = time.perf_counter(), time.process_time()
        handle, params = self._ask()
        self.ask_cpu_seconds.append(time.process_time() - cpu)
        self.ask_seconds.append(time.perf_counter() - wall)
        return handle, params

    def _ask(self) -> tuple[Any, dict[str, Any]]:
        raise NotImplementedError

    def tell(self, handle: Any, value: float) -> None:
        """Record the value of an asked point."""
        raise NotImplementedError

    def add(self, params: Mapping[str, Any], value: float) -> None:
        """Record an evaluation that was not asked for."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (threads, connections)."""


class OurSession(Session):
    """Our ``Optimizer`` with ``OUR_SETTINGS``."""

    def __init__(self, task: Any, seed: int, variant: str = OURS) -> None:
        super().__init__()
        self.opt = make_our_optimizer(task.space, task.direction, seed, variant=variant)

    def _ask(self) -> tuple[Any, dict[str, Any]]:
        trial = self.opt.ask()
        return trial, dict(trial.params)

    def tell(self, handle: Any, value: float) -> None:  # noqa: D102
        self.opt.tell(handle, value)

    def add(self, params: Mapping[str, Any], value: float) -> None:  # noqa: D102
        self.opt.add(dict(params), value)

    def close(self) -> None:  # noqa: D102
        self.opt.close()


class OptunaSession(Session):
    """An Optuna study with one of ``OPTUNA_SAMPLERS`` over the task's box."""

    def __init__(self, task: Any, sampler_name: str, seed: int) -> None:
        import optuna

        super().__init__()
        self.study = optuna.create_study(
            direction=task.direction, sampler=make_optuna_sampler(sampler_name, seed)
        )
        self.dists = optuna_distributions(task.space)

    def _ask(self) -> tuple[Any, dict[str, Any]]:
        trial = self.study.ask(self.dists)  # suggests every parameter: the sampling is timed
        return trial, dict(trial.params)

    def tell(self, handle: Any, value: float) -> None:  # noqa: D102
        self.study.tell(handle, value)

    def add(self, params: Mapping[str, Any], value: float) -> None:  # noqa: D102
        import optuna

        self.study.add_trial(
            optuna.trial.create_trial(params=dict(params), distributions=self.dists, value=value)
        )


def open_session(optimizer: str, task: Any, seed: int) -> Session:
    """A ``Session`` of ``optimizer`` (``OURS`` or one of ``OPTUNA_SAMPLERS``) on ``task``."""
    if optimizer in OUR_VARIANTS:
        return OurSession(task, seed, optimizer)
    return OptunaSession(task, optimizer, seed)


# --------------------------------------------------------------------------- one run


def run_one(task_name: str, optimizer: str, seed: int, budget: int) -> dict[str, Any]:
    """One optimization run; returns a JSON-ready record.

    Args:
        task_name: A key of ``TASKS``.
        optimizer: ``OURS`` or one of ``OPTUNA_SAMPLERS``.
        seed: Seed of the optimizer (the tasks are deterministic).
        budget: Number of evaluations.

    Returns:
        ``task``, ``optimizer``, ``seed``, ``budget``, ``best_value``, ``regret``
        (final simple regret), ``regret_curve`` (best-so-far regret after each
        evaluation), ``values``, ``ask_seconds`` (wall clock, per ask),
        ``ask_cpu_seconds`` (this process's CPU time, per ask) and ``wall_seconds``.
    """
    task = load_task(task_name)
    start = time.perf_counter()
    session = open_session(optimizer, task, seed)
    values: list[float] = []
    try:
        for _ in range(budget):
            handle, params = session.ask()
            value = float(task(params))
            session.tell(handle, value)
            values.append(value)
    finally:
        session.close()
    wall = time.perf_counter() - start
    pick: Callable[[float, float], float] = max if task.direction == "maximize" else min
    curve: list[float] = []
    best = math.nan
    for value in values:
        best = value if math.isnan(best) else pick(best, value)
        curve.append(float(task.regret(best)))
    return {
        "task": task_name,
        "optimizer": optimizer,
        "seed": seed,
        "budget": budget,
        "best_value": best,
        "optimal_value": float(task.optimal_value),
        "regret": curve[-1],
        "regret_curve": curve,
        "values": values,
        "ask_seconds": session.ask_seconds,
        "ask_cpu_seconds": session.ask_cpu_seconds,
        "wall_seconds": wall,
    }


# --------------------------------------------------------------------------- summary


def summarize(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (task, optimizer): regret quantiles over seeds and seconds per ask.

    Args:
        records: Outputs of ``run_one``.

    Returns:
        One row per (task, optimizer) in first-seen order, with ``n_seeds``,
        ``regret_median``, ``regret_q25``, ``regret_q75``, ``ask_seconds_median``
        (over every ask of every seed), ``ask_seconds_mean`` and
        ``ask_cpu_seconds_median``.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for rec in records:
        groups.setdefault((rec["task"], rec["optimizer"]), []).append(rec)
    rows = []
    for (task, optimizer), recs in groups.items():
        regrets = np.array([r["regret"] for r in recs], dtype=float)
        asks = [s for r in recs for s in r["ask_seconds"]]
        cpu = [s for r in recs for s in r["ask_cpu_seconds"]]
        rows.append(
            {
                "task": task,
                "optimizer": optimizer,
                "budget": recs[0]["budget"],
                "n_seeds": len(recs),
                "regret_median": float(np.median(regrets)),
                "regret_q25": float(np.percentile(regrets, 25)),
                "regret_q75": float(np.percentile(regrets, 75)),
                "ask_seconds_median": statistics.median(asks),
                "ask_seconds_mean": statistics.fmean(asks),
                "ask_cpu_seconds_median": statistics.median(cpu),
            }
        )
    return rows


def regret_columns(method: str) -> list[Column]:
    """The leading columns of a ``summarize`` table: task, ``method``, evals, seeds, regret.

    Args:
        method: The row field (and column title) naming what was compared,
            e.g. ``"optimizer"`` or ``"surrogate"``.
    """
    return [
        ("task", "<", lambda r: r["task"]),
        (method, "<", lambda r: r[method]),
        ("evals", ">", lambda r: str(r["budget"])),
        ("seeds", ">", lambda r: str(r["n_seeds"])),
        ("regret med", ">", lambda r: f"{r['regret_median']:.3e}"),
    ]


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary rows as a fixed-width text table."""
    columns = regret_columns("optimizer") + [
        ("q25", ">", lambda r: f"{r['regret_q25']:.3e}"),
        ("q75", ">", lambda r: f"{r['regret_q75']:.3e}"),
        ("s/ask med", ">", lambda r: f"{r['ask_seconds_median']:.4f}"),
        ("s/ask mean", ">", lambda r: f"{r['ask_seconds_mean']:.4f}"),
        ("cpu s/ask", ">", lambda r: f"{r['ask_cpu_seconds_median']:.4f}"),
    ]
    return text_table(columns, rows)


# --------------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=sorted(TASKS),
        default=list(TASKS),
        help="tasks to run (default: all)",
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=list(range(10)), help="seeds (default: 0..9)"
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="evaluations per run for every task (default: branin 30, hartmann6 60)",
    )
    parser.add_argument(
        "--optimizers",
        nargs="+",
        choices=(*OUR_VARIANTS, *OPTUNA_SAMPLERS),
        default=None,
        help=f"optimizers to run (default: {OURS} optuna-gp, plus the baselines with --baselines)",
    )
    parser.add_argument(
        "--baselines", action="store_true", help="also run Optuna TPE and random search"
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="also run both GPs told the objective is noise-free "
        "(bayesopt-det: deterministic=True; optuna-gp-det: "
        "deterministic_objective=True)",
    )
    add_parallel_arguments(parser, DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.budget is not None and args.budget < 1:
        parser.error(f"--budget must be at least 1, got {args.budget}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.optimizers is None:
        args.optimizers = [OURS, "optuna-gp"]
        if args.baselines:
            args.optimizers += ["optuna-tpe", "random"]
    elif args.baselines:
        args.optimizers += [o for o in ("optuna-tpe", "random") if o not in args.optimizers]
    if args.deterministic:
        args.optimizers += [o for o in DETERMINISTIC_PAIR if o not in args.optimizers]
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the comparison, print the table and write the JSON.

    Args:
        argv: Command-line arguments (``sys.argv[1:]`` when None).

    Returns:
        The JSON document: ``config``, ``summary`` rows and per-run ``runs``.
    """
    args = _parse_args(argv)
    threads = args.threads or default_threads(args.workers)
    jobs = [
        (task, optimizer, seed, args.budget or TASKS[task][1])
        for task in args.tasks
        for optimizer in args.optimizers
        for seed in args.seeds
    ]
    print(
        f"{len(jobs)} runs: tasks={args.tasks} optimizers={args.optimizers} "
        f"seeds={args.seeds}; {args.workers} worker(s) x {threads} torch thread(s)",
        flush=True,
    )

    start = time.perf_counter()
    if args.workers == 1:
        init_process(threads)
        records = []
        for job in jobs:
            records.append(run_one(*job))
            _report_progress(records[-1])
    else:
        with ProcessPoolExecutor(
            max_workers=args.workers,
            mp_context=get_context("spawn"),
            initializer=init_process,
            initargs=(threads,),
        ) as pool:
            futures = [pool.submit(run_one, *job) for job in jobs]
            records = []
            for future in futures:
                records.append(future.result())
                _report_progress(records[-1])
    total = time.perf_counter() - start

    order = {name: i for i, name in enumerate(args.optimizers)}
    records.sort(key=lambda r: (args.tasks.index(r["task"]), order[r["optimizer"]], r["seed"]))
    rows = summarize(records)
    print()
    print(format_table(rows))
    print(f"\ntotal wall time {total:.1f} s")

    import optuna
    import torch

    document = {
        "config": {
            "tasks": args.tasks,
            "seeds": args.seeds,
            "budgets": {t: args.budget or TASKS[t][1] for t in args.tasks},
            "optimizers": args.optimizers,
            "our_settings": OUR_SETTINGS,
            "our_variants": OUR_VARIANTS,
            "optuna_samplers": OPTUNA_SAMPLERS,
            "workers": args.workers,
            "torch_threads": threads,
            "optuna_version": optuna.__version__,
            "torch_version": torch.__version__,
            "total_wall_seconds": total,
        },
        "summary": rows,
        "runs": records,
    }
    return write_document(document, args.output)


def _report_progress(rec: Mapping[str, Any]) -> None:
    print(
        f"  {rec['task']:<10} {rec['optimizer']:<11} seed {rec['seed']:>2}: "
        f"regret {rec['regret']:.3e}  ({rec['wall_seconds']:.1f} s)",
        flush=True,
    )


if __name__ == "__main__":
    main()
