"""Summaries and tables of ``benchmarks/compare_text.py``.

Normalized regret, the exact distribution of random search, paired
comparisons and the printed tables. Split from the run script so the
statistics can be read (and tested) on their own; ``compare_text``
re-exports every name.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from benchmarks.harness import Column, text_table

__all__ = [
    "BASELINE",
    "format_markdown",
    "format_table",
    "normalized_regret",
    "paired_with",
    "random_search_exact",
    "summarize",
    "with_exact_random",
]

#: The method every other one is compared with.
BASELINE = "random"


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
    columns: list[Column] = [
        ("task", "<", lambda r: r["task"]),
        ("method", "<", lambda r: r["method"]),
        ("evals", ">", lambda r: str(r["budget"])),
        ("seeds", ">", _seeds),
        ("regret med", ">", lambda r: f"{r['regret_median']:.3f}"),
        ("q25..q75", ">", lambda r: f"{r['regret_q25']:.3f}..{r['regret_q75']:.3f}"),
        ("top %", ">", lambda r: f"{100 * r['top_fraction_median']:.2f}"),
        ("optimum", ">", _hits),
        ("wins vs random", ">", _versus),
        ("s/ask", ">", lambda r: _fmt(r["model_ask_seconds_median"], ".2f")),
    ]
    return text_table(columns, rows)


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
