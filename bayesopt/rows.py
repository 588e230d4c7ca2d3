"""Rows read back from a database, checked against the study's space before use.

A shared database can hold rows that no ``ask`` or ``tell`` of this space
wrote: a crafted queued point (``{"x": 1e9, "evil": "yes"}``), a trial row
whose parameters are missing, unknown or outside the bounds, a row that is not
JSON at all (``SQLStorage`` marks those ``attrs["invalid"]``). Nothing of the
kind reaches a model, an ``ask`` or a sweeper job: an unusable trial keeps
``attrs["invalid"]`` with the reason and is skipped by the model and
``best_trial``; an unusable queued point is dropped. Each is warned about once.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

from bayesopt.space import Space
from bayesopt.trial import Trial

__all__ = ["StoredRows", "usable"]


def usable(trials: Sequence[Trial]) -> list[Trial]:
    """The trials whose rows are fit for the model (no ``attrs["invalid"]``)."""
    return [t for t in trials if "invalid" not in t.attrs]


class StoredRows:
    """Checks stored trials and queued points against a space; warns once per bad row.

    Args:
        space: The study's space.
        study: The study name (for the warnings).
    """

    def __init__(self, space: Space, study: str) -> None:
        self.space = space
        self.study = study
        self._warned: set[tuple[str, int]] = set()

    def trials(self, trials: Sequence[Trial]) -> list[Trial]:
        """Trials with params validated (plain types, the space's choice objects).

        A trial whose params do not fit gets ``attrs["invalid"]``.
        """
        out = []
        for t in trials:
            problem = t.attrs.get("invalid")
            if problem is None:
                try:
                    t = dataclasses.replace(t, params=self.space.validate(t.params))
                except (TypeError, ValueError) as exc:
                    problem = f"params do not fit the space: {exc}"
                    t = dataclasses.replace(t, attrs={**t.attrs, "invalid": problem})
            if problem is not None:
                self._warn("trial", t.id, problem)
            out.append(t)
        return out

    def queue(self, points: Sequence[Any]) -> tuple[list[tuple[int, dict[str, Any]]], list[int]]:
        """``(usable (id, params) in queue order, ids of the points to drop)``.

        Args:
            points: ``SQLStorage`` ``QueuedPoint``s (``id``, ``params``, ``problem``).
        """
        out, bad = [], []
        for point in points:
            problem, params = point.problem, point.params
            if problem is None:
                try:
                    params = self.space.validate(params)
                except (TypeError, ValueError) as exc:
                    problem = f"params do not fit the space: {exc}"
            if problem is None:
                out.append((point.id, params))
            else:
                bad.append(point.id)
                self._warn("queued point", point.id, problem)
        return out, bad

    def _warn(self, kind: str, ident: int, problem: str) -> None:
        if (kind, ident) in self._warned:
            return
        self._warned.add((kind, ident))
        what = "is skipped" if kind == "trial" else "was dropped from the queue"
        warnings.warn(
            f"study {self.study!r}: stored {kind} {ident} {what}: {problem}",
            RuntimeWarning,
            stacklevel=5,
        )
