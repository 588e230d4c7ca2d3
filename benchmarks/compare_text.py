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
import math
import statistics
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
BASELINE = "random"
DEFAULT_OUTPUT = _REPO_ROOT / "benchmarks" / "results" / "compare_text.json"


# --------------------------------------------------------------------------- one run


def normalized_regret(best: float, optimum: float, reference: float) -> float:
    """``(optimum - best) / (optimum - reference)`` for a maximization, clipped at 0.

    Args:
        best: The best value found.
        optimum: The exact optimum.
        reference: The value that scores 1 (here the median candidate's).

    Returns:
        0 at the optimum, 1 at the reference; ``nan`` when optimum == reference.
    """
    span = optimum - reference
    if span <= 0:
        return math.nan
    return max(optimum - best, 0.0) / span


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


# --------------------------------------------------------------------------- summaries


def random_search_exact(values: Sequence[float], budget: int) -> dict[str, Any]:
    """The exact distribution of random search's result: ``budget`` distinct uniform draws.

    With the ``m`` candidate values ranked from best to worst, the best of
    ``k`` draws without replacement has rank greater than ``j`` with
    probability ``C(m - j, k) / C(m, k)``; the normalized regret (reference:
    the median candidate) is a non-decreasing function of the rank, so its
    quantiles are those of the rank. Ten seeded runs of random search can be
    lucky or unlucky; this is the yardstick without that noise.

    Args:
        values: The ``m`` candidates' values (maximization).
        budget: Evaluations.

    Returns:
        A summary row: ``method`` ``"random (exact)"``, ``n_seeds`` None,
        ``regret_median``/``regret_q25``/``regret_q75``/``regret_mean``,
        ``regret_median_at`` (at 10, 20, ... and the budget),
        ``top_fraction_median``, ``p_optimum`` (probability that an optimal
        candidate is drawn) and ``evals_to_optimum_median`` (the draws after
        which that probability reaches one half; may exceed the budget).
    """
    from scipy.special import gammaln

    v = np.sort(np.asarray(values, dtype=float))[::-1]
    m = len(v)
    optimum, reference = float(v[0]), float(np.median(v))
    regrets = np.array([normalized_regret(x, optimum, reference) for x in v])
    better = (m - np.searchsorted(v[::-1], v, side="right")) / m  # share strictly better

    def rank_cdf(k: int) -> np.ndarray:
        """``P(best rank <= j)`` for ``j = 1 .. m``."""
        j = np.arange(1, m + 1)
        free = m - j  # candidates ranked below j
        log_none = gammaln(free + 1) - gammaln(np.maximum(free - k, 0) + 1)
        log_none += gammaln(m - k + 1) - gammaln(m + 1)
        return 1.0 - np.where(free >= k, np.exp(log_none), 0.0)

    def quantile(cdf: np.ndarray, q: float, of: np.ndarray) -> float:
        return float(of[min(int(np.searchsorted(cdf, q - 1e-12)), m - 1)])

    cdf = rank_cdf(budget)
    pmf = np.diff(cdf, prepend=0.0)
    # P(an optimal candidate among the first k draws) = 1 - C(m - n_opt, k) / C(m, k)
    k = np.arange(1, m + 1)
    rest = m - int(np.sum(v == optimum))
    log_miss = gammaln(rest + 1) - gammaln(np.maximum(rest - k, 0) + 1)
    log_miss += gammaln(m - k + 1) - gammaln(m + 1)
    found = 1.0 - np.where(k <= rest, np.exp(log_miss), 0.0)
    marks = sorted({*range(10, budget, 10), budget})
    return {
        "method": "random (exact)",
        "budget": budget,
        "n_seeds": None,
        "regret_median": quantile(cdf, 0.5, regrets),
        "regret_q25": quantile(cdf, 0.25, regrets),
        "regret_q75": quantile(cdf, 0.75, regrets),
        "regret_mean": float(pmf @ regrets),
        "regret_median_at": {k: quantile(rank_cdf(k), 0.5, regrets) for k in marks},
        "top_fraction_median": quantile(cdf, 0.5, better),
        "p_optimum": float(found[budget - 1]),
        "n_optimum": None,
        "evals_to_optimum_median": int(np.searchsorted(found, 0.5) + 1),
        "model_ask_seconds_median": math.nan,
    }


def paired_with(
    records: Sequence[Mapping[str, Any]], task: str, method: str, baseline: str = BASELINE
) -> dict[str, Any]:
    """Seeds where ``method`` ended with a lower regret than ``baseline``, and a Wilcoxon test.

    Returns:
        ``seeds`` (paired), ``wins``, ``ties`` and ``p_value``: the one-sided
        Wilcoxon signed-rank test that ``method``'s regret is lower (``nan``
        when every difference is zero or fewer than two seeds pair).
    """
    from scipy.stats import wilcoxon

    by = {(r["method"], r["seed"]): r["regret"] for r in records if r["task"] == task}
    seeds = sorted({s for m, s in by if m == method} & {s for m, s in by if m == baseline})
    diffs = [by[(method, s)] - by[(baseline, s)] for s in seeds]
    p = math.nan
    if len(diffs) >= 2 and any(diffs):
        p = float(wilcoxon(diffs, alternative="less").pvalue)
    return {
        "against": baseline,
        "seeds": len(seeds),
        "wins": sum(d < 0 for d in diffs),
        "ties": sum(d == 0 for d in diffs),
        "p_value": p,
    }


def summarize(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (task, method), in first-seen order: regret quantiles, top %, pairing, s/ask.

    Returns:
        Rows with ``task``, ``method``, ``budget``, ``n_seeds``,
        ``regret_median``/``regret_q25``/``regret_q75`` (final normalized
        regret over seeds), ``regret_median_at`` (``{evaluations: median}``
        at 10, 20, 30, ... and the budget), ``top_fraction_median``,
        ``best_value_median``, ``n_optimum`` (seeds that evaluated an optimal
        candidate), ``evals_to_optimum_median`` (over all seeds, counting a
        seed that never did as infinite; ``None`` when half of them never
        did), ``vs_random`` (``paired_with``; absent for random itself) and
        ``model_ask_seconds_median`` (``nan`` without model-based asks).
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for rec in records:
        groups.setdefault((rec["task"], rec["method"]), []).append(rec)
    methods = {m for _, m in groups}
    rows = []
    for (task, method), recs in groups.items():
        regrets = np.array([r["regret"] for r in recs], dtype=float)
        budget = min(r["budget"] for r in recs)
        marks = sorted({*range(10, budget, 10), budget})
        model = [
            s for r in recs for s, src in zip(r["ask_seconds"], r["sources"]) if src == "model"
        ]
        hits = [
            next((i + 1 for i, r in enumerate(rec["regret_curve"]) if r == 0), math.inf)
            for rec in recs
        ]
        to_optimum = float(np.median(hits))
        row = {
            "task": task,
            "method": method,
            "budget": budget,
            "n_seeds": len(recs),
            "regret_median": float(np.median(regrets)),
            "regret_q25": float(np.percentile(regrets, 25)),
            "regret_q75": float(np.percentile(regrets, 75)),
            "regret_median_at": {
                k: float(np.median([r["regret_curve"][k - 1] for r in recs])) for k in marks
            },
            "top_fraction_median": float(np.median([r["top_fraction"] for r in recs])),
            "best_value_median": float(np.median([r["best_value"] for r in recs])),
            "optimal_value": float(recs[0]["optimal_value"]),
            "n_optimum": sum(math.isfinite(h) for h in hits),
            "evals_to_optimum_median": to_optimum if math.isfinite(to_optimum) else None,
            "model_ask_seconds_median": statistics.median(model) if model else math.nan,
        }
        if method != BASELINE and BASELINE in methods:
            row["vs_random"] = paired_with(records, task, method)
        rows.append(row)
    return rows


def with_exact_random(
    rows: Sequence[Mapping[str, Any]], tasks: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``rows`` with each task's exact random-search row after its last row.

    Each seeded row of a task with an exact row also gets ``optimum_p``: the
    binomial probability that random search would evaluate an optimum in at
    least as many of the seeds (one-sided; small means the method finds the
    optimum more often than random search can be expected to).
    """
    from scipy.stats import binom

    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        exact = tasks.get(row["task"], {}).get("random_exact")
        if exact is not None and exact["budget"] != row["budget"]:
            exact = None
        out.append(dict(row))
        if exact is not None:
            p = binom.sf(row["n_optimum"] - 1, row["n_seeds"], exact["p_optimum"])
            out[-1]["optimum_p"] = float(p)
        if exact is not None and (i + 1 == len(rows) or rows[i + 1]["task"] != row["task"]):
            out.append(dict(exact))
    return out


def _fmt(x: float, spec: str = ".3g") -> str:
    return "nan" if math.isnan(x) else format(x, spec)


def _hits(row: Mapping[str, Any]) -> str:
    """``"k/n @ e"``: k of n seeds evaluated an optimum, after e evaluations (median)."""
    evals = row["evals_to_optimum_median"]
    if row["n_seeds"] is None:  # the exact random-search row: a probability
        return f"P={row['p_optimum']:.2f} @ {evals}"
    text = f"{row['n_optimum']}/{row['n_seeds']}" + ("" if evals is None else f" @ {evals:g}")
    return text + (f" (p={row['optimum_p']:.1g})" if "optimum_p" in row else "")


def _seeds(row: Mapping[str, Any]) -> str:
    return "exact" if row["n_seeds"] is None else str(row["n_seeds"])


def _versus(row: Mapping[str, Any]) -> str:
    if "vs_random" not in row:
        return "-"
    v = row["vs_random"]
    return f"{v['wins']}/{v['seeds']} (p={_fmt(v['p_value'], '.2g')})"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary rows as a fixed-width text table."""
    header = (
        f"{'task':<17} {'method':<18} {'evals':>5} {'seeds':>5} {'regret med':>10} "
        f"{'q25..q75':>13} {'top %':>6} {'optimum':>19} {'wins vs random':>17} {'s/ask':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        iqr = f"{r['regret_q25']:.3f}..{r['regret_q75']:.3f}"
        lines.append(
            f"{r['task']:<17} {r['method']:<18} {r['budget']:>5d} {_seeds(r):>5} "
            f"{r['regret_median']:>10.3f} {iqr:>13} {100 * r['top_fraction_median']:>6.2f} "
            f"{_hits(r):>19} {_versus(r):>17} {_fmt(r['model_ask_seconds_median'], '.2f'):>6}"
        )
    return "\n".join(lines)


def format_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary rows as a Markdown table (the README's format)."""
    lines = [
        "| task | method | evals | seeds | median normalized regret | q25 .. q75 "
        "| top % (median) | optimum found: seeds @ median evals (binomial p vs random) "
        "| seeds won vs random (one-sided Wilcoxon p) | s/ask (model) |",
        "|---|---|---:|---:|---:|---|---:|---|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['method']} | {r['budget']} | {_seeds(r)} "
            f"| {r['regret_median']:.3f} | {r['regret_q25']:.3f} .. {r['regret_q75']:.3f} "
            f"| {100 * r['top_fraction_median']:.2f} | {_hits(r)} | {_versus(r)} "
            f"| {_fmt(r['model_ask_seconds_median'], '.2f')} |"
        )
    return "\n".join(lines)


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
