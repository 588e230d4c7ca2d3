"""Model fallbacks, counted and reported: a study that became random search is never silent.

A proposal falls back to a space-filling point only when the model failed
numerically (``source == "fallback"``, with the reason in ``attrs["fallback"]``);
a model-based proposal whose surrogate needed a numerical rescue inside its fit
(more Cholesky jitter, the last good hyperparameters) keeps ``source == "model"``
and records the rescue in ``attrs["fallback"]`` too. ``summarize`` counts both
from the stored trials (so every worker, the CLI and the sweeper report alike);
the optimizer warns once when ``STREAK_WARNING`` proposals in a row fell back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bayesopt.trial import Trial

__all__ = [
    "STREAK_WARNING",
    "FallbackSummary",
    "ModelFallbackWarning",
    "streak_message",
    "summarize",
]

#: This many space-filling fallbacks in a row raise one ``ModelFallbackWarning``.
STREAK_WARNING = 3

#: Trial sources of proposals made after the initial design.
MODEL_PHASE = ("model", "fallback")


class ModelFallbackWarning(RuntimeWarning):
    """Several proposals in a row fell back to space-filling points (the model is not used)."""


@dataclass(frozen=True)
class FallbackSummary:
    """How often the model was not (or not fully) used.

    Attributes:
        n_model_phase: Proposals made after the initial design (model or fallback).
        n_fallback: Of those, space-filling points proposed because the model failed.
        n_rescued: Model-based proposals whose fit needed a numerical rescue.
        streak: Space-filling fallbacks in a row among the latest model-phase proposals.
        reasons: ``{reason: count}`` over fallbacks and rescues (most frequent first).
    """

    n_model_phase: int = 0
    n_fallback: int = 0
    n_rescued: int = 0
    streak: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def message(self) -> str | None:
        """One line for the end of a run, or ``None`` when the model was always used as is."""
        if not (self.n_fallback or self.n_rescued):
            return None
        parts = []
        if self.n_fallback:
            parts.append(
                f"{self.n_fallback} of {self.n_model_phase} model proposals fell back to "
                "space-filling points"
            )
        if self.n_rescued:
            parts.append(f"{self.n_rescued} model fits needed a numerical rescue")
        top = "; ".join(f"{n}x {r}" for r, n in list(self.reasons.items())[:3])
        return f"bayesopt: {', '.join(parts)} ({top})."

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``results.json``, ``optimization_results.yaml``).

        ``FallbackSummary(**summary.to_json())`` rebuilds the summary.
        """
        return {
            "n_model_phase": self.n_model_phase,
            "n_fallback": self.n_fallback,
            "n_rescued": self.n_rescued,
            "streak": self.streak,
            "reasons": dict(self.reasons),
        }


def _short(reason: Any, limit: int = 200) -> str:
    text = " ".join(str(reason).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarize(trials: Sequence[Trial]) -> FallbackSummary:
    """Count the fallbacks and rescues of a study's trials (in id order)."""
    phase = [t for t in sorted(trials, key=lambda t: t.id) if t.attrs.get("source") in MODEL_PHASE]
    reasons: Counter[str] = Counter()
    n_fallback = n_rescued = 0
    for t in phase:
        reason = t.attrs.get("fallback")
        if t.attrs.get("source") == "fallback":
            n_fallback += 1
        elif reason:
            n_rescued += 1
        if reason:
            reasons[_short(reason)] += 1
    streak = 0
    for t in reversed(phase):
        if t.attrs.get("source") != "fallback":
            break
        streak += 1
    return FallbackSummary(
        n_model_phase=len(phase),
        n_fallback=n_fallback,
        n_rescued=n_rescued,
        streak=streak,
        reasons=dict(reasons.most_common()),
    )


def streak_message(trials: Sequence[Trial]) -> str | None:
    """The warning when the latest ``STREAK_WARNING`` or more proposals fell back, else None."""
    summary = summarize(trials)
    if summary.streak < STREAK_WARNING:
        return None
    last = next((t.attrs["fallback"] for t in reversed(trials) if t.attrs.get("fallback")), "")
    return (
        f"the last {summary.streak} proposals fell back to space-filling points because the "
        f"model failed ({_short(last)}); until it fits again the study is random search."
    )
