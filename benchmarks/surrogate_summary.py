"""Summaries and tables of ``benchmarks/compare_surrogates.py``.

Per (task, surrogate): regret quantiles over seeds, seconds of a model-based
ask and where they were measured, ``auto``'s choices, the comparison at the
reduced budget of the expensive surrogates, and ``auto``'s gap to the best
single surrogate in log10 units; as a fixed-width text table or as Markdown.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from benchmarks.compare_optuna import regret_columns, summarize
from benchmarks.harness import Column, text_table

__all__ = [
    "auto_gaps",
    "format_markdown",
    "format_table",
    "regret_at",
    "report",
    "summarize_runs",
]


def summarize_runs(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (task, surrogate): regret quantiles over seeds and seconds per model-based ask.

    Args:
        records: Outputs of ``run_one``.

    Returns:
        The rows of ``compare_optuna.summarize`` (``regret_median``,
        ``regret_q25``, ``regret_q75``, ``ask_seconds_median`` over all asks,
        ...) with ``surrogate``, ``model_ask_seconds_median`` and
        ``model_ask_cpu_seconds_median`` (asks whose point came from the model;
        ``nan`` if none did), ``n_model_asks``, ``n_fallbacks``,
        ``wall_seconds_median`` (per run), ``hosts`` (the machines the runs
        ran on: their seconds are comparable only within one) and, for
        ``auto``, ``surrogates_used`` (how often it chose each surrogate) added.
    """
    rows = summarize(records)
    for row in rows:
        recs = [
            r for r in records if (r["task"], r["optimizer"]) == (row["task"], row["optimizer"])
        ]
        model = [
            (s, c)
            for r in recs
            for s, c, a in zip(r["ask_seconds"], r["ask_cpu_seconds"], r["attrs"])
            if a.get("source") == "model"
        ]
        row["surrogate"] = row["optimizer"]
        row["n_model_asks"] = len(model)
        row["model_ask_seconds_median"] = (
            statistics.median(s for s, _ in model) if model else math.nan
        )
        row["model_ask_cpu_seconds_median"] = (
            statistics.median(c for _, c in model) if model else math.nan
        )
        row["n_fallbacks"] = sum(a.get("source") == "fallback" for r in recs for a in r["attrs"])
        # auto records its choice per proposal as ``surrogate_used``
        used = [a["surrogate_used"] for r in recs for a in r["attrs"] if "surrogate_used" in a]
        if used:
            row["surrogates_used"] = {k: used.count(k) for k in sorted(set(used))}
        row["wall_seconds_median"] = statistics.median(r["wall_seconds"] for r in recs)
        row["hosts"] = sorted({_host_label(r) for r in recs})
    return rows


def regret_at(records: Sequence[Mapping[str, Any]], task: str, budget: int) -> dict[str, float]:
    """Median best-so-far regret after ``budget`` evaluations, per surrogate, on ``task``.

    Only runs of at least ``budget`` evaluations count.
    """
    by: dict[str, list[float]] = {}
    for r in records:
        if r["task"] == task and r["budget"] >= budget:
            by.setdefault(r["surrogate"], []).append(r["regret_curve"][budget - 1])
    return {name: float(np.median(v)) for name, v in by.items()}


def auto_gaps(rows: Sequence[Mapping[str, Any]], floor: float = 1e-12) -> dict[str, dict]:
    """Per task: ``log10`` of auto's median regret minus that of the best single surrogate.

    Regrets are floored at ``floor`` before the logarithm (an exact optimum has
    regret 0). Tasks without an ``auto`` row or without another surrogate are
    left out. A positive gap means auto is worse.
    """
    out: dict[str, dict] = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        task_rows = {r["surrogate"]: r for r in rows if r["task"] == task}
        if "auto" not in task_rows or len(task_rows) < 2:
            continue
        singles = {k: v["regret_median"] for k, v in task_rows.items() if k != "auto"}
        best = min(singles, key=singles.get)
        gap = math.log10(max(task_rows["auto"]["regret_median"], floor)) - math.log10(
            max(singles[best], floor)
        )
        out[task] = {"best_single": best, "log10_gap": gap}
    return out


def _host_label(record: Mapping[str, Any]) -> str:
    host = record.get("host") or {}
    if not host:
        return "unrecorded"
    node, cpus, torch = (host.get(k, "?") for k in ("node", "cpus", "torch"))
    return f"{node} ({cpus} CPUs, torch {torch})"


def _fmt(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.3g}"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary rows as a fixed-width text table."""
    columns: list[Column] = regret_columns("surrogate") + [
        ("IQR (q25..q75)", ">", lambda r: f"{r['regret_q25']:.2e}..{r['regret_q75']:.2e}"),
        ("s/ask", ">", lambda r: _fmt(r["model_ask_seconds_median"])),
        ("cpu s/ask", ">", lambda r: _fmt(r["model_ask_cpu_seconds_median"])),
        ("fallbacks", ">", lambda r: str(r["n_fallbacks"])),
    ]
    return text_table(columns, rows)


def format_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary rows as a Markdown table (the README's format)."""
    lines = [
        "| task | surrogate | evals | seeds | median regret | IQR | s/ask (model) | fallbacks |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['surrogate']} | {r['budget']} | {r['n_seeds']} "
            f"| {r['regret_median']:.2e} | {r['regret_q25']:.2e} .. {r['regret_q75']:.2e} "
            f"| {_fmt(r['model_ask_seconds_median'])} | {r['n_fallbacks']} |"
        )
    return "\n".join(lines)


def report(
    rows: Sequence[Mapping[str, Any]],
    at_reduced: Mapping[str, Any],
    gaps: Mapping[str, Any],
    reduced: Sequence[str],
    markdown: bool = False,
) -> str:
    """The main table, the reduced-budget comparison and auto's gaps, as text or Markdown."""
    parts = [format_markdown(rows) if markdown else format_table(rows)]
    if reduced:
        parts.append(
            f"{', '.join(reduced)}: fewer seeds and evaluations (see the evals and seeds "
            "columns); the comparison at their budget, same seeds, best-so-far regret:"
        )
        for task, entry in at_reduced.items():
            cells = ", ".join(f"{k} {v:.2e}" for k, v in entry["regret_median"].items())
            parts.append(f"  {task} @ {entry['budget']} evals: {cells}")
    for r in rows:
        if "surrogates_used" in r:
            parts.append(f"{r['surrogate']} on {r['task']} chose: {r['surrogates_used']}")
    for task, gap in gaps.items():
        verdict = "within" if gap["log10_gap"] <= 0.3 else "NOT within"
        parts.append(
            f"auto on {task}: log10 median-regret gap to the best single surrogate "
            f"({gap['best_single']}) {gap['log10_gap']:+.2f} ({verdict} 0.3)"
        )
    hosts: dict[str, list[str]] = {}
    for r in rows:
        for host in r.get("hosts", ()):
            hosts.setdefault(host, []).append(f"{r['surrogate']}/{r['task']}")
    if len(hosts) > 1:
        parts.append("seconds per ask measured on several machines (compare within one):")
        parts.extend(f"  {host}: {', '.join(which)}" for host, which in hosts.items())
    return "\n\n".join(parts) if markdown else "\n".join(parts)
