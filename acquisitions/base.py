"""The acquisition contract, its context, and its registry.

An acquisition turns a fitted botorch model into a botorch
``AcquisitionFunction``::

    acqf = acquisition.build(model, context)

``context`` is plain data (``AcquisitionContext``): the evaluated points, the
pending and failed points, the incumbent, the encoded domain and the seed.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from botorch.acquisition import AcquisitionFunction
    from botorch.models.model import Model
    from torch import Tensor

__all__ = [
    "Acquisition",
    "AcquisitionContext",
    "Domain",
    "UnsupportedModelError",
    "available_acquisitions",
    "get_acquisition",
    "register_acquisition",
]


class UnsupportedModelError(TypeError):
    """The acquisition is not defined for this kind of model."""


@dataclass(frozen=True)
class Domain:
    """The encoded search domain, as the acquisition optimizer needs it.

    Attributes:
        bounds: ``2 x d`` lower and upper bounds of each encoded column.
        discrete: ``{column: sorted admissible values}`` for ordinal columns
            (integers, stepped floats) with a finite grid.
        categorical: ``{column: codes}`` for unordered columns.
        candidates: Optional ``m x d`` finite candidate set (the only points
            that may be proposed).
    """

    bounds: Tensor
    discrete: dict[int, list[float]] = field(default_factory=dict)
    categorical: dict[int, list[float]] = field(default_factory=dict)
    candidates: Tensor | None = None

    @property
    def dim(self) -> int:
        """Number of encoded columns ``d``."""
        return int(self.bounds.shape[-1])


@dataclass(frozen=True)
class AcquisitionContext:
    """Everything an acquisition may use besides the model.

    Attributes:
        X_baseline: ``n x d`` evaluated (complete) points.
        Y_baseline: ``n x 1`` their outcomes, oriented for maximization.
        X_pending: ``p x d`` running and failed points (``None`` if none).
        best_f: Best observed outcome (maximization).
        domain: The encoded search domain.
        seed: Seed of this proposal (samplers are seeded with it).
        iteration: Number of finished trials so far.
        q: Number of points to propose jointly.
    """

    X_baseline: Tensor
    Y_baseline: Tensor
    X_pending: Tensor | None
    best_f: float
    domain: Domain
    seed: int
    iteration: int = 0
    q: int = 1


class Acquisition(ABC):
    """Base class of acquisitions: ``build(model, context) -> AcquisitionFunction``."""

    name: ClassVar[str] = "acquisition"

    def check_model(self, model: Model) -> None:
        """Raise ``UnsupportedModelError`` (with the reason) if ``model`` is unsupported."""
        return None

    @abstractmethod
    def build(self, model: Model, context: AcquisitionContext) -> AcquisitionFunction:
        """Return a botorch acquisition function for ``model`` in ``context``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_REGISTRY: dict[str, str | type[Acquisition]] = {
    "qlognei": "acquisitions.noisy_ei:QLogNEI",
    "qnei": "acquisitions.noisy_ei:QNEI",
    "logei": "acquisitions.ei:LogEI",
    "ei": "acquisitions.ei:EI",
    "decision_nei": "acquisitions.decision_nei:DecisionNEI",
    "ucb": "acquisitions.ucb:UCB",
    "ts": "acquisitions.thompson:ThompsonSampling",
    "kg": "acquisitions.knowledge_gradient:KnowledgeGradient",
}


def register_acquisition(name: str) -> Callable[[type[Acquisition]], type[Acquisition]]:
    """Class decorator registering an acquisition under ``name``."""

    def deco(cls: type[Acquisition]) -> type[Acquisition]:
        known = _REGISTRY.get(name)
        if (
            known is not None
            and known != f"{cls.__module__}:{cls.__qualname__}"
            and known is not cls
        ):
            raise ValueError(f"Cannot register duplicate acquisition name {name!r} ({known}).")
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


def available_acquisitions() -> list[str]:
    """Registered acquisition names."""
    return sorted(_REGISTRY)


def get_acquisition(spec: str | Acquisition, **options: Any) -> Acquisition:
    """Return an acquisition instance from a registry name or an instance.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
        TypeError: ``spec`` is neither a name nor an ``Acquisition``.
    """
    if isinstance(spec, Acquisition):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"acquisition: expected a registry name or an acquisitions.Acquisition, got {spec!r}."
        )
    if spec not in _REGISTRY:
        raise ValueError(
            f"acquisition: unknown name {spec!r}; valid names are {available_acquisitions()}."
        )
    entry = _REGISTRY[spec]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        _REGISTRY[spec] = entry
    return entry(**options)
