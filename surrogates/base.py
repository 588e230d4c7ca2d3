"""The surrogate contract and its registry.

A surrogate turns observations into a botorch ``Model``::

    model = surrogate.fit(X, Y, columns, seed)

where ``X`` is ``n x d`` (one column per parameter: numerics scaled to
``[0, 1]``, categoricals as integer codes), ``Y`` is ``n x 1`` oriented for
maximization and *not* standardized, and ``columns`` describes each column.
The returned model's posterior is on the scale of ``Y``; standardization
happens inside the surrogate.
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from botorch.models.model import Model
    from torch import Tensor

__all__ = [
    "DEVICE_TYPES",
    "Column",
    "FitError",
    "Surrogate",
    "available_surrogates",
    "check_device",
    "get_surrogate",
    "register_surrogate",
]


@dataclass(frozen=True)
class Column:
    """What a surrogate needs to know about one input column.

    Attributes:
        name: The parameter name.
        kind: ``"continuous"``, ``"integer"`` (an ordinal grid, e.g. Int or a
            stepped Float, encoded in ``[0, 1]``), ``"categorical"`` (codes
            ``0 .. n_categories - 1``) or ``"text"``.
        n_categories: Number of categories for ``categorical``/``text`` columns.
        values: The encoded grid of an ``integer`` column, when finite.
        embedding: For ``text`` columns, the ``n_categories x e`` embedding
            matrix (a float tensor; row ``k`` embeds candidate code ``k``).
    """

    name: str
    kind: str
    n_categories: int | None = None
    values: tuple[float, ...] | None = None
    embedding: Any = field(default=None, compare=False, repr=False)


def positive_int(name: str, value: Any) -> int:
    """Validate a constructor option that must be an integer ``>= 1``.

    Raises:
        ValueError: naming the option and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}.")
    return int(value)


def number(name: str, value: Any, positive: bool = False) -> float:
    """Validate a finite, non-negative (or with ``positive``, strictly positive) number.

    Raises:
        ValueError: naming the option and the value.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name}: expected a {kind} number, got {value!r}.")
    return float(value)


#: Device types a surrogate may be given (other torch types are refused: untested here).
DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(device: Any) -> Any:
    """Validate a surrogate's ``device`` option against the torch of this process.

    A device that cannot work is refused here, at construction, instead of
    failing every fit later (each ask then falling back to a space-filling point).
    torch is imported only for a device other than ``"cpu"``.

    Args:
        device: A device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``)
            or a ``torch.device``.

    Returns:
        ``device`` unchanged.

    Raises:
        ValueError: naming ``device`` and the value: not a torch device, a type
            other than ``DEVICE_TYPES``, ``cuda`` without CUDA (a CPU-only torch
            or no visible GPU) or with an index past the visible GPUs, ``mps``
            without MPS.
    """
    if isinstance(device, str) and device == "cpu":
        return device
    import torch

    if not isinstance(device, (str, torch.device)):
        raise ValueError(
            f"device: expected a torch device string such as 'cpu' or 'cuda', got {device!r}."
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"device: {device!r} is not a torch device ({exc}).") from None
    if dev.type not in DEVICE_TYPES:
        raise ValueError(
            f"device: {device!r} is not supported; expected one of {list(DEVICE_TYPES)} "
            "(with an index for cuda, e.g. 'cuda:0')."
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = (
                "this torch is a CPU-only build"
                if torch.version.cuda is None
                else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
            )
            raise ValueError(f"device: {device!r} requested but CUDA is not available: {why}.")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device: {device!r} requested but only {count} CUDA device(s) are "
                f"visible (indices 0..{count - 1})."
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device: {device!r} requested but MPS is not available to this torch.")
    return device


class FitError(RuntimeError):
    """A surrogate could not be fitted to the data it was given."""


class Surrogate(ABC):
    """Base class of surrogates: ``fit(X, Y, columns, seed) -> botorch Model``.

    Subclasses set ``name`` and implement ``fit``. They may keep state between
    fits (e.g. the last good hyperparameters, used as a warm start or as a
    fallback when a fit fails).

    Args:
        device: Torch device of the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``,
            ``"mps"``), checked by ``check_device``.

    Raises:
        ValueError: ``device`` cannot work in this process (see ``check_device``).
    """

    name: ClassVar[str] = "surrogate"
    #: Whether ``posterior(X, observation_noise=True)`` adds observation noise.
    includes_observation_noise: ClassVar[bool] = True
    #: Whether the posterior is sample based (``EnsemblePosterior``).
    is_ensemble: ClassVar[bool] = False

    def __init__(self, *, device: str = "cpu") -> None:
        self.device = check_device(device)
        #: JSON-able state of the last successful fit (e.g. hyperparameters), or None.
        #: The optimizer stores it with the trial and passes it back as ``init``
        #: to the next fit, so warm starts are reproducible across processes.
        self.last_state: dict[str, Any] | None = None
        #: Whether the last ``fit`` optimized its hyperparameters (False: it reused ``init``).
        self.last_refit: bool = True

    @abstractmethod
    def fit(
        self,
        X: Tensor,
        Y: Tensor,
        columns: Sequence[Column],
        seed: int,
        init: Mapping[str, Any] | None = None,
        refit: bool = True,
    ) -> Model:
        """Fit to data and return a botorch model.

        Args:
            X: ``n x d`` encoded inputs (float64).
            Y: ``n x 1`` outcomes, larger is better, on the user's scale.
            columns: ``d`` column descriptions.
            seed: Seed for any randomness in fitting.
            init: ``last_state`` of an earlier fit on this study, for a warm
                start (a surrogate may ignore it).
            refit: With ``init``, ``False`` allows reusing ``init`` as is and only
                conditioning on the data (a surrogate may refit anyway); set
                ``last_refit`` to say which happened.

        Returns:
            A botorch ``Model`` whose posterior is on the scale of ``Y``.

        Raises:
            FitError: the model could not be fitted; the caller falls back.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# name -> "module:Class" (imported on first use, so start-up stays light) or a class
_REGISTRY: dict[str, str | type[Surrogate]] = {
    "gp": "surrogates.gp:GPSurrogate",
    "ibnn": "surrogates.ibnn:IBNNSurrogate",
    "dkl": "surrogates.dkl:DKLSurrogate",
    "ensemble": "surrogates.ensemble:EnsembleSurrogate",
    "hmc_bnn": "surrogates.hmc_bnn:HMCBNNSurrogate",
    "auto": "surrogates.auto:AutoSurrogate",
    "neural_bandit": "surrogates.neural_bandit:NeuralBanditSurrogate",
}


def register_surrogate(name: str) -> Callable[[type[Surrogate]], type[Surrogate]]:
    """Class decorator registering a surrogate under ``name``.

    Raises:
        ValueError: ``name`` is already registered to another class.
    """

    def deco(cls: type[Surrogate]) -> type[Surrogate]:
        known = _REGISTRY.get(name)
        if (
            known is not None
            and known != f"{cls.__module__}:{cls.__qualname__}"
            and known is not cls
        ):
            raise ValueError(f"Cannot register duplicate surrogate name {name!r} ({known}).")
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


def available_surrogates() -> list[str]:
    """Registered surrogate names."""
    return sorted(_REGISTRY)


def _resolve(name: str) -> type[Surrogate]:
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        _REGISTRY[name] = entry
    return entry


def get_surrogate(spec: str | Surrogate, **options: Any) -> Surrogate:
    """Return a surrogate instance from a registry name or an instance.

    Args:
        spec: A registered name (see ``available_surrogates()``) or an instance.
        **options: Constructor options when ``spec`` is a name.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
        TypeError: ``spec`` is neither a name nor a ``Surrogate``.
    """
    if isinstance(spec, Surrogate):
        if options:
            raise TypeError(
                f"surrogate: options {sorted(options)} given with an instance {spec!r}."
            )
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"surrogate: expected a registry name or a surrogates.Surrogate, got {spec!r}."
        )
    if spec not in _REGISTRY:
        raise ValueError(
            f"surrogate: unknown name {spec!r}; valid names are {available_surrogates()}."
        )
    return _resolve(spec)(**options)
