"""Trials: one evaluation of the objective, and its life cycle."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Trial", "TrialState", "best_of"]


class TrialState(enum.Enum):
    """The state of a trial.

    ``RUNNING`` -> ``COMPLETE`` (told a finite value) or ``FAILED`` (``fail``,
    a non-finite value, or a stale heartbeat). ``PRUNED`` is reserved for
    pruners and schedulers.
    """

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    PRUNED = "PRUNED"

    @property
    def is_finished(self) -> bool:
        """Whether the trial is no longer running."""
        return self is not TrialState.RUNNING


@dataclass(frozen=True)
class Trial:
    """An immutable record of one evaluation.

    Attributes:
        id: Per-study number, 0, 1, 2, ... in order of creation.
        params: ``{name: value}`` in user units and plain Python types.
        state: The ``TrialState``.
        value: The objective value as told (``None`` unless ``COMPLETE``).
        attrs: JSON attributes: ``surrogate``, ``fit_seconds``, ``fallback``,
            ``worker``, ``created_at``, ``finished_at``, ``heartbeat``,
            ``fail_reason``, ``source`` (``sobol``, ``model``, ``enqueued``,
            ``added``, ``fallback``), ``attempts`` (launches of a relaunched
            trial), ``invalid`` (why a stored row cannot be used: the model
            and ``best_trial`` skip it), ...
        study: The name of the study the trial belongs to (``None`` for a
            trial built by hand).
        study_key: The study's unique key in its storage; ``tell`` and
            ``fail`` refuse a trial of another study.
    """

    id: int
    params: dict[str, Any]
    state: TrialState
    value: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    study: str | None = None
    study_key: str | None = field(default=None, repr=False)

    def _replace(self, **changes: Any) -> Trial:
        return replace(self, **changes)


def best_of(trials: list[Trial], direction: str) -> Trial | None:
    """The best COMPLETE trial by observed value (the earliest on ties), or None."""
    done = [t for t in trials if t.state is TrialState.COMPLETE and "invalid" not in t.attrs]
    if not done:
        return None
    sign = -1.0 if direction == "minimize" else 1.0
    return max(done, key=lambda t: (sign * t.value, -t.id))
