"""The numbers of a benchmark report: runs loaded from the database, regrets, ranks.

``benchmarks.report`` turns them into the Markdown report, its JSON and plots.

Definitions (every value is first oriented for minimization: a maximized
task's values are negated, so "lower is better" throughout). For a run of
optimizer ``m`` with seed ``s`` on task ``p`` with budget ``T``:

* ``S_ms(t)``: the best value among its first ``t`` finished evaluations
  (failed evaluations count towards ``t`` but have no value).
* **simple regret** ``S_ms(T) - f*_p`` (clipped at 0), only where the task's
  optimum ``f*_p`` is known exactly.
* **normalized regret** (Bayesmark's normalization against random search,
  at the budget): ``(S_ms(T) - opt_p) / (median_s S_random,s(T) - opt_p)``, where
  ``opt_p`` is the best value known for the task: the lower of the task's
  optimum (exact or frozen reference) and the best value any run of this report
  observed. 0 is the optimum, 1 is random search's median result, above 1 is
  worse than random search. It is undefined when the report has no random
  search on the task or random's median already reached ``opt_p``. Where no
  optimum is stored, ``opt_p`` depends on which optimizers were compared.
* **mean rank**: for each task and seed, the optimizers that ran it are ranked by
  ``S_ms(T)`` (1 = best; ties share the mean rank); a task's rank is the mean
  over seeds, the overall one the mean over tasks.
* **seconds per ask**: wall clock of ``ask`` (the proposal, storage included),
  median over all asks of all seeds; also after the initial design only
  (trial ids ``>= n_initial``) and in CPU seconds of the process.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "RANDOM",
    "best_curve",
    "load_runs",
    "normalized_curves",
    "normalized_regret",
    "summarize",
]

RANDOM = "random"
"""The optimizer name normalized regret is measured against."""


# --------------------------------------------------------------------------- loading


def load_runs(storage: str) -> list[dict[str, Any]]:
    """Every job of a run's database as a plain record.

    Args:
        storage: The database URL (``sqlite:///<out>/trials.db``).

    Returns:
        One dict per job: ``study``, ``optimizer``, ``task``, ``seed``, ``budget``,
        ``n_initial``, ``status``, ``wall_seconds``, the task ``info``
        (``direction``, ``optimal_value``, ``optimum_is_exact``, ``dim``, ...),
        ``values`` (one per finished trial in id order, ``None`` for a failed
        one; at most ``budget``), ``ask_seconds``, ``ask_cpu_seconds`` and
        ``ask_model_seconds`` (asks of trials ``>= n_initial``).
    """
    from bayesopt.storage.sql import SQLStorage
    from benchmarks.records import RunRecords

    store = SQLStorage(storage)
    try:
        records = RunRecords(store.engine)
        runs = []
        for job in records.jobs():
            study = store.load_study(job.study)
            trials = [] if study is None else store.trials(study.id)
            finished = [t for t in trials if t.state.is_finished][: job.budget]
            asks = records.asks(job.study)
            ids = [t.id for t in finished if t.id in asks]
            n_init = job.n_initial or 0
            runs.append(
                {
                    "study": job.study,
                    "optimizer": job.optimizer,
                    "task": job.task,
                    "seed": job.seed,
                    "budget": job.budget,
                    "n_initial": job.n_initial,
                    "status": job.status,
                    "wall_seconds": job.wall_seconds,
                    "info": job.info,
                    "values": [t.value if t.value is not None else None for t in finished],
                    "ask_seconds": [asks[i][0] for i in ids],
                    "ask_cpu_seconds": [asks[i][1] for i in ids],
                    "ask_model_seconds": [asks[i][0] for i in ids if i >= n_init],
                }
            )
    finally:
        store.dispose()
    return runs


# --------------------------------------------------------------------------- math


def best_curve(values: Sequence[float | None], direction: str) -> list[float]:
    """Oriented best-so-far curve: ``S(t)`` for ``t = 1..len(values)``.

    Args:
        values: Observed values in evaluation order (``None``/non-finite: failed).
        direction: ``"minimize"`` or ``"maximize"`` (values are negated).

    Returns:
        Floats, lower is better; ``nan`` before the first finite value.
    """
    sign = -1.0 if direction == "maximize" else 1.0
    best, out = math.inf, []
    for v in values:
        if v is not None and math.isfinite(v):
            best = min(best, sign * float(v))
        out.append(best if math.isfinite(best) else math.nan)
    return out


def normalized_regret(final: float, opt: float, random_median: float) -> float | None:
    """``(final - opt) / (random_median - opt)``; ``None`` when undefined (see module doc)."""
    if not all(math.isfinite(x) for x in (final, opt, random_median)) or random_median <= opt:
        return None
    return (final - opt) / (random_median - opt)


def _quantiles(xs: Sequence[float]) -> dict[str, float | None]:
    arr = np.asarray([x for x in xs if x is not None and not math.isnan(x)], dtype=float)
    if arr.size == 0:
        return {"median": None, "q25": None, "q75": None, "mean": None}
    return {
        "median": float(np.median(arr)),
        "q25": float(np.percentile(arr, 25)),
        "q75": float(np.percentile(arr, 75)),
        "mean": float(arr.mean()),
    }


def _median_or_none(xs: Sequence[float | None]) -> float | None:
    kept = [x for x in xs if x is not None]
    return statistics.median(kept) if kept else None


def _ranks(scores: Mapping[str, float]) -> dict[str, float]:
    """Rank 1 = lowest score; ties share their mean rank; nan ranks last."""
    from scipy.stats import rankdata

    names = list(scores)
    vals = np.array([scores[n] if math.isfinite(scores[n]) else np.inf for n in names])
    return dict(zip(names, rankdata(vals, method="average").tolist(), strict=True))


def summarize(runs: Sequence[Mapping[str, Any]], random_name: str = RANDOM) -> dict[str, Any]:
    """Per-task and overall numbers of a set of runs (see the module docstring).

    Args:
        runs: Records as ``load_runs`` returns them (``optimizer``, ``task``,
            ``seed``, ``budget``, ``n_initial``, ``info``, ``values``, ``ask_*``).
        random_name: The optimizer normalized regret is measured against.

    Returns:
        ``{"tasks": {task: {...}}, "overall": {optimizer: {...}}, "optimizers": [...],
        "common_tasks": [...]}``; every number is a float or ``None``.
    """
    optimizers = list(dict.fromkeys(r["optimizer"] for r in runs))
    tasks: dict[str, Any] = {}
    for name in dict.fromkeys(r["task"] for r in runs):
        task_runs = [r for r in runs if r["task"] == name]
        info = task_runs[0]["info"]
        direction = info["direction"]
        sign = -1.0 if direction == "maximize" else 1.0
        finals = {}  # (optimizer, seed) -> S(T)
        for r in task_runs:
            curve = best_curve(r["values"], direction)
            finals[(r["optimizer"], r["seed"])] = curve[-1] if curve else math.nan
        observed = [v for v in finals.values() if math.isfinite(v)]
        known = info.get("optimal_value")
        candidates = observed + ([sign * known] if known is not None else [])
        opt = min(candidates) if candidates else math.nan
        rand = [v for (o, _), v in finals.items() if o == random_name]
        rand_median = float(np.median(rand)) if rand else math.nan
        exact = known is not None and info.get("optimum_is_exact", True)

        seeds = sorted({s for (_, s) in finals})
        rank_lists: dict[str, list[float]] = {o: [] for o in optimizers}
        for s in seeds:
            here = {o: v for (o, s2), v in finals.items() if s2 == s}
            for o, rank in _ranks(here).items():
                rank_lists[o].append(rank)

        per_opt = {}
        for o in optimizers:
            rs = [r for r in task_runs if r["optimizer"] == o]
            if not rs:
                continue
            fin = [finals[(o, r["seed"])] for r in rs]
            norm = [normalized_regret(f, opt, rand_median) for f in fin]
            simple = [max(f - sign * known, 0.0) for f in fin] if exact else []
            asks = [x for r in rs for x in r["ask_seconds"]]
            per_opt[o] = {
                "n_seeds": len(rs),
                "budget": max(r["budget"] for r in rs),
                "n_finished": [len(r["values"]) for r in rs],
                "final_best": [sign * f if math.isfinite(f) else None for f in fin],
                "simple_regret": _quantiles(simple) if exact else None,
                "normalized_regret": _quantiles([n for n in norm if n is not None])
                if any(n is not None for n in norm)
                else None,
                "normalized_regret_per_seed": norm,
                "mean_rank": statistics.fmean(rank_lists[o]) if rank_lists[o] else None,
                "ask_seconds": _quantiles(asks),
                "ask_model_seconds": _quantiles(
                    [x for r in rs for x in r.get("ask_model_seconds", [])]
                ),
                "ask_cpu_seconds": _quantiles([x for r in rs for x in r["ask_cpu_seconds"]]),
                "wall_seconds": float(sum(r.get("wall_seconds", 0.0) for r in rs)),
            }
        tasks[name] = {
            "direction": direction,
            "dim": info.get("dim"),
            "optimal_value": known,
            "optimum_is_exact": bool(exact),
            "best_known": sign * opt if math.isfinite(opt) else None,
            "random_median": sign * rand_median if math.isfinite(rand_median) else None,
            "optimizers": per_opt,
        }

    covered = {o: [t for t in tasks if o in tasks[t]["optimizers"]] for o in optimizers}
    common = [t for t in tasks if all(o in tasks[t]["optimizers"] for o in optimizers)]
    overall = {}
    for o in optimizers:
        ranks = [tasks[t]["optimizers"][o]["mean_rank"] for t in covered[o]]
        norms = [
            tasks[t]["optimizers"][o]["normalized_regret"]["median"]
            for t in covered[o]
            if tasks[t]["optimizers"][o]["normalized_regret"] is not None
        ]
        asks = [tasks[t]["optimizers"][o]["ask_seconds"]["median"] for t in covered[o]]
        cpu = [tasks[t]["optimizers"][o]["ask_cpu_seconds"]["median"] for t in covered[o]]
        overall[o] = {
            "n_tasks": len(covered[o]),
            "mean_rank": statistics.fmean(ranks) if ranks else None,
            "mean_rank_common": statistics.fmean(
                tasks[t]["optimizers"][o]["mean_rank"] for t in common
            )
            if common and len(common) < len(tasks)
            else None,
            "normalized_regret_mean": statistics.fmean(norms) if norms else None,
            "normalized_regret_median": statistics.median(norms) if norms else None,
            "n_tasks_normalized": len(norms),
            "ask_seconds_median_of_tasks": _median_or_none(asks),
            "ask_cpu_seconds_median_of_tasks": _median_or_none(cpu),
        }
    return {"optimizers": optimizers, "tasks": tasks, "overall": overall, "common_tasks": common}


def normalized_curves(
    runs: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    points: int = 20,
) -> dict[str, list[list[float]]]:
    """Per optimizer, one normalized-regret curve per task over fractions of the budget.

    Each task's curve is the median over seeds of ``(S_ms(t) - opt_p) /
    (random median at the budget - opt_p)`` at ``t = ceil(k / points * budget)``,
    ``k = 1..points`` (so tasks with different budgets line up). Tasks without
    a defined normalization are left out.

    Returns:
        ``{optimizer: [curve per task]}``, each curve ``points`` floats.
    """
    out: dict[str, list[list[float]]] = {}
    for name, task in summary["tasks"].items():
        if task["random_median"] is None or task["best_known"] is None:
            continue
        sign = -1.0 if task["direction"] == "maximize" else 1.0
        opt, rand = sign * task["best_known"], sign * task["random_median"]
        if rand <= opt:
            continue
        for o in task["optimizers"]:
            per_seed = []
            for r in (r for r in runs if r["task"] == name and r["optimizer"] == o):
                curve = best_curve(r["values"], task["direction"])
                budget = r["budget"]
                idx = [
                    min(math.ceil(k * budget / points), len(curve)) - 1
                    for k in range(1, points + 1)
                ]
                per_seed.append(
                    [(curve[i] - opt) / (rand - opt) if i >= 0 else math.nan for i in idx]
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns
                out.setdefault(o, []).append(np.nanmedian(np.asarray(per_seed), axis=0).tolist())
    return out
