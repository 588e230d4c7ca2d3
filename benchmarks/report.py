"""Benchmark report: normalized and simple regret, mean ranks, convergence plots, ask times.

Reads a run's database (``benchmarks.runner`` writes it) and writes
``<out>/report/report.md`` (tables + plot links), ``report.json`` (every number,
plus each run's curves) and ``plots/<task>.png``::

    .venv/bin/python -m benchmarks.report outputs/bench/quick

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

import argparse
import datetime as _dt
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
            with _quiet():
                out.setdefault(o, []).append(np.nanmedian(np.asarray(per_seed), axis=0).tolist())
    return out


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
        with np.errstate(all="ignore"), _quiet():
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


class _quiet:
    """Silence numpy's all-nan warnings inside ``plot_task``."""

    def __enter__(self) -> None:
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)


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
        "search's median at the budget (Bayesmark's normalization; see `benchmarks/report.py`). "
        "Brackets: 25th and 75th percentiles over seeds. Seconds per ask: median wall clock.",
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
) -> dict[str, Any]:
    """Load a run, then write ``report.md``, ``report.json`` and ``plots/`` into ``report_dir``.

    Args:
        out: The run folder (holds ``trials.db`` unless ``storage`` says otherwise).
        storage: The database URL (default ``sqlite:///<out>/trials.db``).
        report_dir: Where to write (default ``<out>/report``).
        title: The markdown title (default from the folder's name).
        optimizers: Report only these optimizers (default: all in the run), e.g.
            the ones whose grid is complete while others are still running.

    Returns:
        The JSON document written (``summary``, ``runs``, ``meta``).

    Raises:
        ValueError: No jobs, or an optimizer that is not in the run.
    """
    out = Path(out).resolve()
    storage = storage or f"sqlite:///{out / 'trials.db'}"
    report_dir = Path(report_dir) if report_dir is not None else out / "report"
    runs = load_runs(storage)
    if not runs:
        raise ValueError(f"report: no benchmark jobs in {storage}.")
    if optimizers:
        present = sorted({r["optimizer"] for r in runs})
        missing = [o for o in optimizers if o not in present]
        if missing:
            raise ValueError(f"report: optimizers {missing} are not in the run; it has {present}.")
        runs = [r for r in runs if r["optimizer"] in optimizers]
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
    args = parser.parse_args(argv)
    return write_report(
        args.out, args.storage, report_dir=args.report_dir, optimizers=args.optimizers
    )


if __name__ == "__main__":
    main()
