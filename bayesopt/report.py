"""Run reports: trial tables, best-so-far curves, ``trials.csv``, ``results.json``, plots.

Everything here takes plain data (trials, values, callables), so the CLI and
the benchmark runners share it. matplotlib is imported only when a plot is
drawn, onto an Agg canvas (pyplot and the global backend are left alone).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bayesopt.trial import Trial, TrialState

__all__ = [
    "ATTR_COLUMNS",
    "best_so_far",
    "finished_trials",
    "plot_convergence",
    "regret_curve",
    "trial_rows",
    "write_results_json",
    "write_trials_csv",
]

FINISHED_STATES = (TrialState.COMPLETE, TrialState.FAILED, TrialState.PRUNED)
"""The states that count towards ``n_trials``."""

ATTR_COLUMNS = ("source", "surrogate", "fit_seconds", "fallback", "fail_reason", "worker")
"""Trial attributes copied into ``trials.csv`` (blank when a trial lacks one)."""


def finished_trials(trials: Sequence[Trial]) -> list[Trial]:
    """The finished (COMPLETE, FAILED, PRUNED) trials, in id order."""
    return sorted((t for t in trials if t.state in FINISHED_STATES), key=lambda t: t.id)


def best_so_far(values: Sequence[float | None], direction: str = "minimize") -> list[float | None]:
    """Running best of a sequence, ignoring ``None`` and non-finite entries.

    Args:
        values: One value per finished trial (``None`` for a failed one).
        direction: ``"minimize"`` or ``"maximize"``.

    Returns:
        A list of the same length: the best finite value among the first
        ``k + 1`` entries, or ``None`` before the first finite one.
    """
    better = min if direction == "minimize" else max
    best: float | None = None
    out: list[float | None] = []
    for v in values:
        if v is not None and math.isfinite(v):
            best = float(v) if best is None else better(best, float(v))
        out.append(best)
    return out


def regret_curve(
    trials: Sequence[Trial], regret: Callable[[float], float], direction: str = "minimize"
) -> list[float | None]:
    """Best-so-far simple regret after each finished trial (id order).

    Args:
        trials: Trials of a study (any states; only finished ones count).
        regret: Maps an objective value to its simple regret.
        direction: ``"minimize"`` or ``"maximize"``.

    Returns:
        One entry per finished trial: the regret of the best value so far,
        ``None`` before the first COMPLETE trial or when the regret is unknown.
    """
    best = best_so_far([t.value for t in finished_trials(trials)], direction)
    return [_finite_or_none(regret(b)) if b is not None else None for b in best]


def trial_rows(
    trials: Sequence[Trial],
    param_names: Sequence[str],
    *,
    direction: str = "minimize",
    regret: Callable[[float], float] | None = None,
    ask_seconds: Mapping[int, float] | None = None,
) -> list[dict[str, Any]]:
    """One flat row per trial, in id order, for ``trials.csv``.

    Columns: ``id``, ``state``, ``value``, ``param_<name>`` per parameter,
    ``best_so_far`` and ``regret_so_far`` (over finished trials up to this id;
    blank for a running trial), ``ask_seconds`` (when known), and the
    attributes of ``ATTR_COLUMNS``.

    Args:
        trials: Trials of a study.
        param_names: Parameter names, in column order.
        direction: ``"minimize"`` or ``"maximize"``.
        regret: Maps a value to its simple regret (``None``: no regret column values).
        ask_seconds: ``{trial id: seconds the ask that created it took}``.

    Returns:
        A list of dicts with identical keys.
    """
    ask_seconds = ask_seconds or {}
    ordered = sorted(trials, key=lambda t: t.id)
    finished = finished_trials(ordered)
    best_by_id = dict(
        zip((t.id for t in finished), best_so_far([t.value for t in finished], direction))
    )
    rows = []
    for t in ordered:
        best = best_by_id.get(t.id)
        row: dict[str, Any] = {"id": t.id, "state": t.state.value, "value": t.value}
        row.update({f"param_{k}": t.params.get(k) for k in param_names})
        row["best_so_far"] = best
        row["regret_so_far"] = (
            _finite_or_none(regret(best)) if regret is not None and best is not None else None
        )
        row["ask_seconds"] = ask_seconds.get(t.id)
        row.update({k: t.attrs.get(k) for k in ATTR_COLUMNS})
        rows.append(row)
    return rows


def write_trials_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write ``trial_rows`` output as CSV (``None`` becomes an empty cell).

    Floats are written with ``repr`` precision, so values read back exactly.

    Returns:
        The path written.
    """
    path = Path(path)
    fieldnames = list(rows[0]) if rows else ["id", "state", "value"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return path


def write_results_json(results: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write a results dict as indented JSON; non-finite floats become ``null``.

    Returns:
        The path written.
    """
    path = Path(path)
    path.write_text(json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n")
    return path


def plot_convergence(
    curves: Mapping[str, Sequence[float | None]],
    path: str | os.PathLike,
    *,
    n_initial: int | None = None,
    log_y: bool = True,
    ylabel: str = "best-so-far simple regret",
    title: str | None = None,
    floor: float = 1e-12,
) -> Path:
    """Plot best-so-far curves against the number of finished trials and save a PNG.

    Args:
        curves: ``{label: one value per finished trial}`` (``None`` entries,
            before the first successful trial, are not drawn).
        path: Where to write the image.
        n_initial: Size of the initial design: a dashed vertical line after it.
        log_y: Log-scaled y axis; values are clipped at ``floor`` so a zero
            regret stays on the plot.
        ylabel: The y-axis label.
        title: The plot title.
        floor: Smallest value drawn on a log axis.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # An Agg canvas on a bare Figure: no pyplot, no global backend switch or figure state.
    fig = Figure(figsize=(6.0, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    drawn = False
    for label, curve in curves.items():
        xs = [i + 1 for i, v in enumerate(curve) if v is not None and math.isfinite(v)]
        ys = [float(v) for v in curve if v is not None and math.isfinite(v)]
        if log_y:
            ys = [max(y, floor) for y in ys]
        if xs:
            ax.step(xs, ys, where="post", label=label, marker=".", markersize=3)
            drawn = True
    if log_y and drawn:
        ax.set_yscale("log")
    if n_initial:
        ax.axvline(
            n_initial + 0.5,
            color="grey",
            linestyle="--",
            linewidth=1,
            label=f"initial design ({n_initial})",
        )
    ax.set_xlabel("finished trials")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if drawn or n_initial:
        ax.legend(loc="best", fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    return v


def _jsonable(obj: Any) -> Any:
    """Recursively convert to JSON types; non-finite floats -> ``None``."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "item"):  # numpy / torch scalars
        return _jsonable(obj.item())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)
