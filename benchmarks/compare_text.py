"""Neural bandits, a GP and random search on the two offline text tasks.

What is measured: on ``hpobench_text`` (HPOBench MLP configurations written as
sentences, 30,000 candidates) and ``zero_shot_prompt`` (480 prompt templates),
each method gets ``--budget`` noise-free evaluations (default 50: ``--n-initial``
10 random candidates, then 40 model-based steps) per seed:

* ``neural_bandit+ucb`` and ``neural_bandit+ts``: ``Optimizer(surrogate=
  "neural_bandit", acquisition="ucb" | "ts")`` -- NeuralUCB and NeuralTS over
  the MiniLM embeddings of the candidates, the surrogate's defaults;
* ``gp+qlognei``: the GP on the same embedding columns with log noisy EI;
* ``random``: candidates drawn uniformly without replacement.

The three model-based methods share the initial design of a seed (Sobol point
``k`` of the study seed goes to trial ``k``); random search draws its own.
Score: the **normalized regret** of the best value found,
``(f* - best) / (f* - f_med)``, where ``f*`` is the task's exact optimum and
``f_med`` the median value over all candidates (so a single random draw scores
about 1 and the optimum 0). Printed per task and method: median and quartiles
over seeds of the final normalized regret, the median share of candidates
better than the best found ("top %"), the seeds won against random search
(paired by seed) with the one-sided Wilcoxon signed-rank p-value, and the
median seconds per model-based ask. The "optimum" column counts the seeds
that evaluated an optimal candidate and the median evaluations they needed.
A last row per task, ``random (exact)``, is random search's exact
distribution over all possible draws (no seed luck): its quartiles, the
probability of drawing an optimum within the budget and the draws after which
that probability reaches one half; the seeded rows' "optimum" column adds the
binomial probability that random search would find the optimum in as many
seeds. Records go to
``benchmarks/results/compare_text.json``, the table to the ``.md`` beside it.

Run from the repository root::

    .venv/bin/python benchmarks/compare_text.py --workers 2   # 2 tasks x 4 methods x 10 seeds
    .venv/bin/python benchmarks/compare_text.py --tasks zero_shot_prompt --seeds 0 1 2
    .venv/bin/python benchmarks/compare_text.py --quick       # plumbing check, seconds

``--quick``: one seed, candidate subsets (200 configurations, 40 templates),
3 initial + 3 model steps, 50 training epochs of the neural bandit -- its
numbers mean nothing. The candidates are
embedded once in the parent process (then read from the disk cache by the
workers). Torch threads per process default to ``cpu_count // workers``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:  # run as a script: make `bayesopt` and `benchmarks` importable
    sys.path.insert(0, str(_REPO_ROOT))

from benchmarks.harness import (  # noqa: E402
    add_parallel_arguments,
    configure_threads,
    default_threads,
    write_document,
)
from benchmarks.text_summary import (  # noqa: E402
    format_markdown,
    format_table,
    normalized_regret,
    paired_with,
    random_search_exact,
    summarize,
    with_exact_random,
)

__all__ = [
    "METHODS",
    "TASKS",
    "format_markdown",
    "format_table",
    "main",
    "normalized_regret",
    "paired_with",
    "random_search_exact",
    "run_one",
    "summarize",
    "with_exact_random",
]

#: Method name -> ``(surrogate, acquisition)``; ``None`` is random search.
METHODS: dict[str, tuple[str, str] | None] = {
    "neural_bandit+ucb": ("neural_bandit", "ucb"),
    "neural_bandit+ts": ("neural_bandit", "ts"),
    "gp+qlognei": ("gp", "qlognei"),
    "random": None,
}
#: Task registry name -> constructor options of the full benchmark.
TASKS: dict[str, dict[str, Any]] = {
    "hpobench_text": {"dataset": "blood_transfusion"},
    "zero_shot_prompt": {},
}
#: Candidate subsets of ``--quick`` (per task).
QUICK_CANDIDATES: dict[str, int] = {"hpobench_text": 200, "zero_shot_prompt": 40}
#: Surrogate options of ``--quick`` (a short training; ``--options`` overrides them).
QUICK_OPTIONS: dict[str, dict[str, Any]] = {"neural_bandit": {"epochs": 50}}
DEFAULT_OUTPUT = _REPO_ROOT / "benchmarks" / "results" / "compare_text.json"


# --------------------------------------------------------------------------- one run


def make_text_task(task_name: str, task_options: Mapping[str, Any]) -> Any:
    """A registered text task with the benchmark's options (noise-free)."""
    import benchmarks.text_tasks  # noqa: F401  (registers the text tasks)
    from benchmarks import make_task

    return make_task(task_name, **dict(task_options))


def _draw(task: Any, method: str, seed: int, budget: int, n_initial: int, options: Mapping):
    """Values, candidate rows, seconds per ask and proposal sources of one run."""
    values, rows, asks, sources = [], [], [], []
    spec = METHODS[method]
    if spec is None:
        rng = np.random.default_rng(seed)
        order = rng.choice(len(task.candidates), size=budget, replace=False)
        for row in order:
            params = {task.parameter: task.candidates[int(row)]}
            values.append(float(task(params)))
            rows.append(int(row))
            asks.append(0.0)
            sources.append("random")
        return values, rows, asks, sources

    from bayesopt import Optimizer

    surrogate, acquisition = spec
    opt = Optimizer(
        dict(task.space),
        surrogate=surrogate,
        acquisition=acquisition,
        direction=task.direction,
        seed=seed,
        n_initial=n_initial,
        surrogate_options=dict(options.get(surrogate, {})),
        acquisition_options=dict(options.get(acquisition, {})),
    )
    try:
        for _ in range(budget):
            start = time.perf_counter()
            trial = opt.ask()
            asks.append(time.perf_counter() - start)
            sources.append(str(trial.attrs.get("source", "")))
            value = float(task(trial.params))
            opt.tell(trial, value)
            values.append(value)
            rows.append(task.index(trial.params))
    finally:
        opt.close()
    return values, rows, asks, sources


def run_one(
    task_name: str,
    task_options: Mapping[str, Any],
    method: str,
    seed: int,
    budget: int,
    n_initial: int,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One run of one method on one task; a JSON-ready record.

    Args:
        task_name: ``hpobench_text`` or ``zero_shot_prompt``.
        task_options: The task's constructor options (dataset, subset, ...).
        method: A key of ``METHODS``.
        seed: Seed of the optimizer (or of random search).
        budget: Number of evaluations.
        n_initial: Random initial candidates before the model (model-based methods).
        options: ``{surrogate or acquisition name: constructor options}``.

    Returns:
        ``task``, ``method``, ``seed``, ``budget``, ``values``, ``best_value``,
        ``rows`` (candidate indices), ``optimal_value``, ``reference_value``
        (median candidate),
        ``regret_curve`` (normalized, best so far), ``regret`` (its last
        entry), ``top_fraction`` (share of candidates better than the best
        found), ``ask_seconds``, ``sources`` and ``wall_seconds``.
    """
    start = time.perf_counter()
    task = make_text_task(task_name, task_options)
    values, rows, asks, sources = _draw(task, method, seed, budget, n_initial, options or {})
    optimum, reference = float(task.optimal_value), float(np.median(task.values))
    best = np.maximum.accumulate(values)
    curve = [normalized_regret(float(b), optimum, reference) for b in best]
    return {
        "task": task_name,
        "task_options": dict(task_options),
        "method": method,
        "seed": seed,
        "budget": budget,
        "n_initial": n_initial,
        "n_candidates": len(task.candidates),
        "values": values,
        "rows": rows,
        "best_value": float(best[-1]),
        "optimal_value": optimum,
        "reference_value": reference,
        "regret_curve": curve,
        "regret": curve[-1],
        "top_fraction": float(np.mean(task.values > best[-1])),
        "ask_seconds": asks,
        "sources": sources,
        "wall_seconds": time.perf_counter() - start,
    }


# --------------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=list(TASKS),
        default=list(TASKS),
        help="tasks (default: both)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        default=list(METHODS),
        help="methods (default: all four)",
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=None, help="seeds (default: 0..9; --quick: 0)"
    )
    parser.add_argument(
        "--budget", type=int, default=None, help="evaluations per run (default 50; --quick: 6)"
    )
    parser.add_argument(
        "--n-initial",
        type=int,
        default=None,
        help="random candidates before the model (default 10; --quick: 3)",
    )
    parser.add_argument(
        "--dataset", default=TASKS["hpobench_text"]["dataset"], help="hpobench_text's table"
    )
    parser.add_argument(
        "--n-candidates",
        type=int,
        default=None,
        help="a seeded candidate subset of this size on every task (default: all)",
    )
    parser.add_argument(
        "--options",
        type=json.loads,
        default={},
        help='surrogate/acquisition options as JSON, e.g. \'{"neural_bandit": {"hidden": 64}}\'',
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        metavar="JSON",
        help="run nothing: summarize the runs of earlier outputs (e.g. one per task) together",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 1 seed, subsets, 3 + 3 evaluations"
    )
    add_parallel_arguments(parser, DEFAULT_OUTPUT, "JSON output path; the Markdown goes beside it")
    args = parser.parse_args(argv)
    args.seeds = args.seeds if args.seeds is not None else ([0] if args.quick else list(range(10)))
    args.budget = args.budget if args.budget is not None else (6 if args.quick else 50)
    args.n_initial = args.n_initial if args.n_initial is not None else (3 if args.quick else 10)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.budget <= args.n_initial or args.n_initial < 1:
        parser.error(
            f"--budget must exceed --n-initial >= 1, got {args.budget} and {args.n_initial}"
        )
    if args.n_candidates is not None and args.n_candidates <= args.budget:
        parser.error(f"--n-candidates must exceed --budget, got {args.n_candidates}")
    if not isinstance(args.options, dict):
        parser.error(f"--options must be a JSON object, got {args.options!r}")
    if args.quick:
        args.options = {
            k: {**QUICK_OPTIONS.get(k, {}), **args.options.get(k, {})}
            for k in {*QUICK_OPTIONS, *args.options}
        }
    args.task_options = {}
    for task in args.tasks:
        options = dict(TASKS[task])
        if task == "hpobench_text":
            options["dataset"] = args.dataset
        n = args.n_candidates or (QUICK_CANDIDATES[task] if args.quick else None)
        if n is not None:
            options["n_candidates"] = n
        args.task_options[task] = options
    return args


def init_worker(threads: int) -> None:
    """Process start-up: thread count, and the imports every run needs."""
    configure_threads(threads)
    import benchmarks.text_tasks  # noqa: F401


def _prepare(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Build each task once in this process: fills the embedding caches before workers start.

    Returns:
        Per task: ``n_candidates``, ``optimal_value``, ``reference_value``,
        ``value_quantiles``, ``random_exact`` (``random_search_exact``) and
        the seconds it took.
    """
    out = {}
    for task_name in args.tasks:
        start = time.perf_counter()
        task = make_text_task(task_name, args.task_options[task_name])
        task.space[task.parameter].embeddings()  # computed once, then from the disk cache
        q = np.percentile(task.values, [0, 25, 50, 75, 90, 99, 100])
        out[task_name] = {
            "options": args.task_options[task_name],
            "n_candidates": len(task.candidates),
            "optimal_value": float(task.optimal_value),
            "reference_value": float(np.median(task.values)),
            "value_quantiles": dict(zip(["0", "25", "50", "75", "90", "99", "100"], q.tolist())),
            "prepare_seconds": time.perf_counter() - start,
            "random_exact": {"task": task_name, **random_search_exact(task.values, args.budget)},
        }
        print(
            f"{task_name}: {len(task.candidates)} candidates, optimum {task.optimal_value:.4f}, "
            f"median {out[task_name]['reference_value']:.4f} "
            f"({out[task_name]['prepare_seconds']:.1f} s to build and embed)",
            flush=True,
        )
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the comparison, print the table, write the JSON and the Markdown.

    Args:
        argv: Command-line arguments (``sys.argv[1:]`` when None).

    Returns:
        The JSON document: ``config``, ``tasks`` (optimum, median, quantiles),
        ``summary`` rows and per-run ``runs``.
    """
    args = _parse_args(argv)
    if args.merge:
        return merge(args.merge, args.output)
    threads = args.threads or default_threads(args.workers)
    init_worker(threads)
    tasks = _prepare(args)
    jobs = [
        (task, args.task_options[task], method, seed, args.budget, args.n_initial, args.options)
        for task in args.tasks
        for method in args.methods
        for seed in args.seeds
    ]
    print(
        f"{len(jobs)} runs: tasks={args.tasks} methods={args.methods} seeds={args.seeds} "
        f"budget={args.budget} (n_initial={args.n_initial}); "
        f"{args.workers} worker(s) x {threads} torch thread(s)",
        flush=True,
    )
    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    if args.workers == 1:
        for job in jobs:
            records.append(run_one(*job))
            _report_progress(records[-1])
    else:
        with ProcessPoolExecutor(
            max_workers=args.workers,
            mp_context=get_context("spawn"),
            initializer=init_worker,
            initargs=(threads,),
        ) as pool:
            # Model-based runs first (random search takes milliseconds).
            order = sorted(jobs, key=lambda j: METHODS[j[2]] is None)
            for future in as_completed([pool.submit(run_one, *job) for job in order]):
                records.append(future.result())
                _report_progress(records[-1])
    total = time.perf_counter() - start

    records.sort(
        key=lambda r: (args.tasks.index(r["task"]), args.methods.index(r["method"]), r["seed"])
    )
    rows = with_exact_random(summarize(records), tasks)
    print()
    print(format_table(rows))
    print(f"\ntotal wall time {total:.1f} s")

    import torch

    document = {
        "config": {
            "tasks": args.tasks,
            "task_options": args.task_options,
            "methods": {m: METHODS[m] for m in args.methods},
            "seeds": args.seeds,
            "budget": args.budget,
            "n_initial": args.n_initial,
            "options": args.options,
            "quick": args.quick,
            "workers": args.workers,
            "torch_threads": threads,
            "torch_version": torch.__version__,
            "total_wall_seconds": total,
            "command": "benchmarks/compare_text.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
        },
        "tasks": tasks,
        "summary": rows,
        "runs": records,
    }
    write_document(document, args.output)
    md = args.output.with_suffix(".md")
    md.write_text(format_markdown(rows) + "\n")
    print(f"wrote {md}")
    return document


def merge(paths: Sequence[Path], output: Path) -> dict[str, Any]:
    """Summarize the runs of several earlier outputs as one document (and table).

    Args:
        paths: JSON documents written by ``main``.
        output: Where the merged JSON goes (the Markdown beside it).

    Returns:
        ``config`` (``merged_from`` and each source's config), ``tasks``,
        ``summary`` and ``runs`` of all sources.
    """
    docs = [json.loads(Path(p).read_text()) for p in paths]
    records = [r for d in docs for r in d["runs"]]
    tasks = {k: dict(v) for d in docs for k, v in d["tasks"].items()}
    for name, info in tasks.items():
        budgets = {r["budget"] for r in records if r["task"] == name}
        if "random_exact" not in info and len(budgets) == 1:  # an output from before it existed
            values = make_text_task(name, info["options"]).values
            info["random_exact"] = {"task": name, **random_search_exact(values, budgets.pop())}
    rows = with_exact_random(summarize(records), tasks)
    print(format_table(rows))
    document = {
        "config": {"merged_from": [str(p) for p in paths], "sources": [d["config"] for d in docs]},
        "tasks": tasks,
        "summary": rows,
        "runs": records,
    }
    write_document(document, output)
    output.with_suffix(".md").write_text(format_markdown(rows) + "\n")
    return document


def _report_progress(rec: Mapping[str, Any]) -> None:
    print(
        f"  {rec['task']:<17} {rec['method']:<18} seed {rec['seed']:>2}: "
        f"normalized regret {rec['regret']:.3f}  ({rec['wall_seconds']:.1f} s)",
        flush=True,
    )


if __name__ == "__main__":
    main()
