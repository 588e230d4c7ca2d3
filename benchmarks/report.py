"""Benchmark report: normalized and simple regret, mean ranks, convergence plots, ask times.

Reads a run's database (``benchmarks.runner`` writes it) and writes
``<out>/report/report.md`` (tables + plot links), ``report.json`` (every number,
plus each run's curves) and ``plots/<task>.png``::

    .venv/bin/python -m benchmarks.report outputs/bench/quick

The numbers (loading, regrets, ranks, and their definitions) come from
``benchmarks.report_summary``; this module writes them out.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report_summary import (
    best_curve,
    load_runs,
    normalized_curves,
    normalized_regret,
    summarize,
)

__all__ = [
    "best_curve",
    "load_runs",
    "main",
    "normalized_curves",
    "normalized_regret",
    "plot_task",
    "render_markdown",
    "summarize",
    "write_report",
]


# --------------------------------------------------------------------------- plots


def plot_task(
    curves: Mapping[str, Sequence[Sequence[float]]],
    path: Path,
    *,
    title: str,
    ylabel: str,
    n_initial: int | None = None,
    floor: float = 1e-10,
    x: Sequence[float] | None = None,
    xlabel: str = "evaluations",
    legend_title: str = "median, IQR (seeds)",
) -> Path:
    """Median and interquartile band over seeds of each optimizer's curve (log y).

    Args:
        curves: ``{optimizer: [one curve per seed]}``; a curve holds the gap
            to the reference after each evaluation (``nan`` before the first value).
        path: The PNG to write.
        title: Plot title.
        ylabel: Y-axis label.
        n_initial: Initial design size (a dashed line after it).
        floor: Values are clipped here so zeros stay on the log axis.
        x: The x value of each curve point (default ``1, 2, ...``).
        xlabel: X-axis label.
        legend_title: Legend title (what the line and band summarize).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, seeds in curves.items():
        n = max((len(c) for c in seeds), default=0)
        if n == 0:
            continue
        arr = np.full((len(seeds), n), np.nan)
        for i, c in enumerate(seeds):
            arr[i, : len(c)] = c
        arr = np.maximum(arr, floor)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns
            med = np.nanmedian(arr, axis=0)
            lo, hi = np.nanpercentile(arr, 25, axis=0), np.nanpercentile(arr, 75, axis=0)
        xs = np.arange(1, n + 1) if x is None else np.asarray(x, dtype=float)[:n]
        (line,) = ax.plot(
            xs, med, label=f"{label} ({len(seeds)})", linewidth=1.6, drawstyle="steps-post"
        )
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0, step="post")
    ax.set_yscale("log")
    if n_initial:
        ax.axvline(n_initial + 0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize="small", title=legend_title, title_fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


# --------------------------------------------------------------------------- output


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "n/a" if x is None else format(x, spec)


def _q(q: Mapping[str, Any] | None) -> str:
    if q is None or q.get("median") is None:
        return "n/a"
    return f"{_fmt(q['median'])} [{_fmt(q['q25'])}, {_fmt(q['q75'])}]"


def render_markdown(summary: Mapping[str, Any], *, title: str, meta: Mapping[str, Any]) -> str:
    """The report as markdown: overall ranking, then one table and plot per task."""
    lines = [f"# {title}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += [
        "",
        "Lower is better everywhere. Normalized regret: 0 = best known value, 1 = random "
        "search's median at the budget (Bayesmark's normalization; see "
        "`benchmarks/report_summary.py`). Brackets: 25th and 75th percentiles over seeds. "
        "Seconds per ask: median wall clock.",
        "",
        "## Overall",
        "",
        "| optimizer | tasks | mean rank | mean normalized regret | median normalized regret "
        "| median s/ask | median CPU s/ask |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    overall = summary["overall"]
    order = sorted(
        overall, key=lambda o: (overall[o]["mean_rank"] is None, overall[o]["mean_rank"] or 0)
    )
    for o in order:
        row = overall[o]
        rank = _fmt(row["mean_rank"], ".2f")
        if row.get("mean_rank_common") is not None:
            rank += f" ({_fmt(row['mean_rank_common'], '.2f')} on the common tasks)"
        lines.append(
            f"| {o} | {row['n_tasks']} | {rank} | {_fmt(row['normalized_regret_mean'])} "
            f"| {_fmt(row['normalized_regret_median'])} "
            f"| {_fmt(row['ask_seconds_median_of_tasks'])} "
            f"| {_fmt(row['ask_cpu_seconds_median_of_tasks'])} |"
        )
    if any(t["random_median"] is not None for t in summary["tasks"].values()):
        lines += ["", "![normalized regret](plots/normalized_regret.png)"]
    for name, task in summary["tasks"].items():
        opt_text = (
            f"optimum {task['optimal_value']:.6g}"
            + ("" if task["optimum_is_exact"] else " (frozen reference)")
            if task["optimal_value"] is not None
            else "no stored optimum"
        )
        budget = max(v["budget"] for v in task["optimizers"].values())
        lines += [
            "",
            f"### {name}",
            "",
            f"{task['dim']}-D, {task['direction']}, {opt_text}, budget {budget}; "
            f"best known value {_fmt(task['best_known'], '.6g')}; random search median "
            f"{_fmt(task['random_median'], '.6g')}.",
            "",
            "| optimizer | seeds | simple regret | normalized regret | mean rank | s/ask "
            "| s/ask after design | CPU s/ask |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for o in (o for o in order if o in task["optimizers"]):
            row = task["optimizers"][o]
            lines.append(
                f"| {o} | {row['n_seeds']} | {_q(row['simple_regret'])} "
                f"| {_q(row['normalized_regret'])} | {_fmt(row['mean_rank'], '.2f')} "
                f"| {_fmt(row['ask_seconds']['median'])} "
                f"| {_fmt(row['ask_model_seconds']['median'])} "
                f"| {_fmt(row['ask_cpu_seconds']['median'])} |"
            )
        lines += ["", f"![{name}](plots/{name}.png)"]
    return "\n".join(lines) + "\n"


def write_report(
    out: Path | str,
    storage: str | None = None,
    *,
    report_dir: Path | str | None = None,
    title: str | None = None,
    optimizers: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Load a run, then write ``report.md``, ``report.json`` and ``plots/`` into ``report_dir``.

    Args:
        out: The run folder (holds ``trials.db`` unless ``storage`` says otherwise).
        storage: The database URL (default ``sqlite:///<out>/trials.db``).
        report_dir: Where to write (default ``<out>/report``).
        title: The markdown title (default from the folder's name).
        optimizers: Report only these optimizers (default: all in the run), e.g.
            the ones whose grid is complete while others are still running.
        tasks: Report only these tasks (default: all in the run), e.g. the
            subset an expensive optimizer ran; ranks and normalization are
            then among the selected runs only.

    Returns:
        The JSON document written (``summary``, ``runs``, ``meta``).

    Raises:
        ValueError: No jobs, or an optimizer or task that is not in the run.
    """
    out = Path(out).resolve()
    storage = storage or f"sqlite:///{out / 'trials.db'}"
    report_dir = Path(report_dir) if report_dir is not None else out / "report"
    runs = load_runs(storage)
    if not runs:
        raise ValueError(f"report: no benchmark jobs in {storage}.")
    for field, selected in (("optimizer", optimizers), ("task", tasks)):
        runs = _select(runs, field, selected)
    summary = summarize(runs)
    import platform

    meta = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "run folder": str(out),
        "jobs": f"{len(runs)} ({sum(r['status'] == 'complete' for r in runs)} complete)",
        "seeds": len({r["seed"] for r in runs}),
        "total job wall time": f"{sum(r['wall_seconds'] for r in runs) / 60:.1f} min",
        "versions": _versions(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
    }
    plots = report_dir / "plots"
    for name, task in summary["tasks"].items():
        ref = task["optimal_value"] if task["optimum_is_exact"] else task["best_known"]
        sign = -1.0 if task["direction"] == "maximize" else 1.0
        curves: dict[str, list[list[float]]] = {}
        for r in runs:
            if r["task"] == name and ref is not None:
                c = np.asarray(best_curve(r["values"], task["direction"])) - sign * ref
                curves.setdefault(r["optimizer"], []).append(np.maximum(c, 0.0).tolist())
        n_init = next((r["n_initial"] for r in runs if r["task"] == name), None)
        plot_task(
            curves,
            plots / f"{name}.png",
            title=f"{name} ({task['dim']}-D)",
            ylabel="simple regret" if task["optimum_is_exact"] else "gap to best known value",
            n_initial=n_init,
        )
    aggregate = normalized_curves(runs, summary)
    if aggregate:
        plot_task(
            aggregate,
            plots / "normalized_regret.png",
            title="normalized regret across tasks (1 = random search at the budget)",
            ylabel="normalized regret",
            floor=1e-3,
            x=[k / 20 for k in range(1, 21)],
            xlabel="fraction of the budget",
            legend_title="median, IQR (tasks)",
        )
    report_dir.mkdir(parents=True, exist_ok=True)
    text = render_markdown(summary, title=title or f"Benchmark report: {out.name}", meta=meta)
    (report_dir / "report.md").write_text(text)
    document = {"meta": meta, "summary": summary, "runs": runs}
    (report_dir / "report.json").write_text(json.dumps(_jsonable(document), indent=1))
    print(f"wrote {report_dir / 'report.md'}", flush=True)
    return document


def _select(
    runs: Sequence[Mapping[str, Any]], field: str, selected: Sequence[str] | None
) -> list[Mapping[str, Any]]:
    """The runs whose ``field`` is one of ``selected`` (all where ``selected`` is empty)."""
    if not selected:
        return list(runs)
    present = sorted({r[field] for r in runs})
    missing = [v for v in selected if v not in present]
    if missing:
        raise ValueError(f"report: {field}s {missing} are not in the run; it has {present}.")
    return [r for r in runs if r[field] in selected]


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("bayesopt", "torch", "botorch", "optuna"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            continue
    return ", ".join(parts)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: ``python -m benchmarks.report <run folder> [--storage URL]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the run folder (outputs/bench/<name>)")
    parser.add_argument("--storage", default=None, help="database URL (default: <out>/trials.db)")
    parser.add_argument("--report-dir", type=Path, default=None, help="default: <out>/report")
    parser.add_argument(
        "--optimizers", nargs="+", default=None, help="report only these (default: all)"
    )
    parser.add_argument(
        "--tasks", nargs="+", default=None, help="report only these (default: all)"
    )
    args = parser.parse_args(argv)
    return write_report(
        args.out,
        args.storage,
        report_dir=args.report_dir,
        optimizers=args.optimizers,
        tasks=args.tasks,
    )


if __name__ == "__main__":
    main()
