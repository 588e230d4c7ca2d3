"""Parameter types of a search space: ``Float``, ``Int`` and ``Categorical``.

Each parameter maps a user value to one encoded column and back: floats and
integers to ``[0, 1]`` (linearly, in log space for ``log=True``, in logit
space for ``logit=True``), categoricals to integer codes ``0 .. k-1``.
Decoding rounds integers, steps and log scales in the user's units, so the
value a model sees is exactly the value the user gets. ``Text`` lives in
``bayesopt.text``; ``Space`` (``bayesopt.space``) puts parameters together.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["Categorical", "Float", "Int", "Parameter"]

# A numeric parameter with at most this many distinct values is handed to the
# acquisition optimizer as a discrete dimension; beyond it, as a continuous one
# whose value is rounded on decoding (botorch relaxes large grids the same way).
MAX_DISCRETE_VALUES = 1000

_JSON_SCALARS = (str, int, float, bool, type(None))

try:  # numpy booleans are not numbers either (numpy is optional for the space)
    from numpy import bool_ as np_bool
except ImportError:  # pragma: no cover
    np_bool = bool


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _is_number(value: Any) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np_bool))


class Parameter:
    """Base class of a search-space dimension.

    Subclasses implement ``encode`` (user value -> model column value),
    ``decode`` (model column value -> user value, rounded) and ``validate``.
    """

    kind: ClassVar[str]

    def encode(self, value: Any) -> float:
        """Map a user value to its model column value."""
        raise NotImplementedError

    def decode(self, u: float) -> Any:
        """Map a model column value back to a (rounded) user value."""
        raise NotImplementedError

    def validate(self, name: str, value: Any) -> Any:
        """Return ``value`` as a plain Python value of this parameter, or raise."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable description (see ``Space.from_json``)."""
        raise NotImplementedError

    def grid(self) -> list[float] | None:
        """The encoded values a discrete dimension may take, or None if continuous."""
        return None

    @property
    def upper_code(self) -> float:
        """The upper bound of the encoded column (``1`` for numerics)."""
        return 1.0

    def from_unit(self, u: float) -> Any:
        """The user value of a unit-interval coordinate (Sobol designs)."""
        return self.decode(u)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Parameter:
        """Rebuild from ``to_json`` output without its ``"type"`` key."""
        return cls(**spec)


@dataclass(frozen=True)
class _Numeric(Parameter):
    low: float
    high: float
    log: bool = False
    step: float | None = None
    logit: bool = False

    def _check_bounds(self, integral: bool) -> None:
        cls = type(self).__name__
        for label in ("low", "high"):
            bound = getattr(self, label)
            if not _is_number(bound):
                raise TypeError(f"{cls}: `{label}` must be a number, got {bound!r}.")
            if not math.isfinite(bound):
                raise ValueError(f"{cls}: `{label}` must be finite, got {bound!r}.")
            if integral and float(bound) != int(bound):
                raise ValueError(f"{cls}: `{label}` must be an integer, got {bound!r}.")
        if self.low >= self.high:
            raise ValueError(
                f"{cls}: expected low < high, got low={self.low!r}, high={self.high!r}."
            )
        if self.log and self.low <= 0:
            raise ValueError(f"{cls}: log scale needs low > 0, got low={self.low!r}.")
        if self.logit:
            if integral:
                raise ValueError(f"{cls}: logit scale is for fractions; use Float, got Int.")
            if self.log or self.step is not None:
                raise ValueError(f"{cls}: logit=True cannot be combined with log or step.")
            if not (0.0 < self.low and self.high < 1.0):
                raise ValueError(
                    f"{cls}: logit scale needs 0 < low < high < 1, "
                    f"got low={self.low!r}, high={self.high!r}."
                )
        if self.step is not None:
            if not _is_number(self.step) or not math.isfinite(self.step) or self.step <= 0:
                raise ValueError(f"{cls}: `step` must be a positive number, got {self.step!r}.")
            if integral and float(self.step) != int(self.step):
                raise ValueError(f"{cls}: `step` must be an integer, got {self.step!r}.")
            if self.log and self.step != 1:
                raise ValueError(f"{cls}: `step` cannot be combined with log=True.")
            n = (self.high - self.low) / self.step
            if abs(n - round(n)) > 1e-9 * max(1.0, abs(n)):
                raise ValueError(
                    f"{cls}: step={self.step!r} does not fit the range "
                    f"[{self.low!r}, {self.high!r}] (high - low must be a multiple of step)."
                )

    # --- the unit-interval map --------------------------------------------------
    def _to_unit(self, v: float) -> float:
        if self.logit:
            lo, hi = _logit(self.low), _logit(self.high)
            return (_logit(min(max(v, self.low), self.high)) - lo) / (hi - lo)
        if self.log:
            return (math.log(v) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (v - self.low) / (self.high - self.low)

    def _from_unit(self, u: float) -> float:
        u = float(u)
        if u <= 0.0:
            return self.low
        if u >= 1.0:
            return self.high
        if self.logit:
            lo, hi = _logit(self.low), _logit(self.high)
            v = 1.0 / (1.0 + math.exp(-(lo + u * (hi - lo))))
        elif self.log:
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return min(max(v, self.low), self.high)

    def _n_steps(self) -> int | None:
        return None if self.step is None else int(round((self.high - self.low) / self.step))

    def _snap(self, v: float) -> float:
        """Round ``v`` onto the step grid (no-op without a step)."""
        if self.step is None:
            return v
        k = round((v - self.low) / self.step)
        return min(max(self.low + k * self.step, self.low), self.high)

    def encode(self, value: Any) -> float:
        """Map a user value to ``[0, 1]``."""
        return self._to_unit(float(value))

    def _check_value(self, name: str, value: Any) -> float:
        if not _is_number(value):
            raise TypeError(f"Parameter {name!r}: expected a number, got {value!r}.")
        if not math.isfinite(value) or not (self.low <= value <= self.high):
            raise ValueError(
                f"Parameter {name!r}: value {value!r} is outside [{self.low!r}, {self.high!r}]."
            )
        return float(value)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable description."""
        return {
            "type": self.kind,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
            **({"logit": True} if self.logit else {}),
        }


@dataclass(frozen=True)
class Float(_Numeric):
    """A real-valued parameter on ``[low, high]`` (inclusive).

    Args:
        low: Lower bound (finite).
        high: Upper bound (finite, greater than ``low``).
        log: Search on a log scale (needs ``low > 0``).
        step: Optional grid spacing; values are ``low + k * step``.
        logit: Search on a logit scale, ``log(p / (1 - p))``, for fractions
            (needs ``0 < low < high < 1``; Bayesmark's spaces use it).
    """

    kind: ClassVar[str] = "float"

    def __post_init__(self) -> None:
        self._check_bounds(integral=False)
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))

    def decode(self, u: float) -> float:
        """Map ``[0, 1]`` back to a float (snapped onto the step grid)."""
        return float(self._snap(self._from_unit(u)))

    def validate(self, name: str, value: Any) -> float:
        """Check a user value; return it as a float."""
        v = self._check_value(name, value)
        if self.step is not None and abs(self._snap(v) - v) > 1e-9 * max(1.0, abs(v)):
            raise ValueError(
                f"Parameter {name!r}: value {value!r} is not on the grid "
                f"{self.low!r} + k * {self.step!r}."
            )
        return v

    def grid(self) -> list[float] | None:
        """Encoded grid of a stepped float (None when continuous or too fine)."""
        n = self._n_steps()
        if n is None or n + 1 > MAX_DISCRETE_VALUES:
            return None
        return [self._to_unit(self.low + k * self.step) for k in range(n + 1)]


@dataclass(frozen=True)
class Int(_Numeric):
    """An integer parameter on ``[low, high]`` (inclusive).

    Args:
        low: Lower bound (an integer).
        high: Upper bound (an integer greater than ``low``).
        log: Search on a log scale (needs ``low > 0``); values are rounded in
            the user's units.
        step: Grid spacing (default 1); values are ``low + k * step``.
    """

    kind: ClassVar[str] = "int"
    step: float | None = 1

    def __post_init__(self) -> None:
        if self.step is None:
            object.__setattr__(self, "step", 1)
        self._check_bounds(integral=True)
        object.__setattr__(self, "low", int(self.low))
        object.__setattr__(self, "high", int(self.high))
        object.__setattr__(self, "step", int(self.step))

    def decode(self, u: float) -> int:
        """Map ``[0, 1]`` back to an integer on the step grid."""
        return int(round(self._snap(self._from_unit(u))))

    def validate(self, name: str, value: Any) -> int:
        """Check a user value; return it as an int."""
        v = self._check_value(name, value)
        if v != int(v) or (int(v) - self.low) % self.step:
            raise ValueError(
                f"Parameter {name!r}: value {value!r} is not an integer on the grid "
                f"{self.low} + k * {self.step}."
            )
        return int(v)

    def grid(self) -> list[float] | None:
        """Encoded values of every admissible integer (None when too many)."""
        n = self._n_steps()
        if n + 1 > MAX_DISCRETE_VALUES:
            return None
        return [self._to_unit(self.low + k * self.step) for k in range(n + 1)]


@dataclass(frozen=True, init=False)
class Categorical(Parameter):
    """An unordered choice among distinct JSON scalars (str, int, float, bool, None).

    Args:
        choices: The admissible values; encoded as integer codes in this order.
    """

    choices: tuple[Any, ...] = field(default=())
    kind: ClassVar[str] = "categorical"

    def __init__(self, choices: Sequence[Any]) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Iterable):
            raise TypeError(f"Categorical: `choices` must be a list, got {choices!r}.")
        choices = tuple(choices)
        if not choices:
            raise ValueError("Categorical: `choices` must not be empty, got [].")
        keys = set()
        for c in choices:
            if not isinstance(c, _JSON_SCALARS):
                raise TypeError(
                    f"Categorical: choices must be JSON scalars (str, int, float, bool, None), "
                    f"got {c!r} of type {type(c).__name__}."
                )
            if isinstance(c, float) and not math.isfinite(c):
                raise ValueError(f"Categorical: choices must be finite, got {c!r}.")
            key = _choice_key(c)
            if key in keys:
                raise ValueError(f"Categorical: duplicate choice {c!r} in {list(choices)!r}.")
            keys.add(key)
        object.__setattr__(self, "choices", choices)

    def _index(self, value: Any) -> int | None:
        key = _choice_key(value)
        for i, c in enumerate(self.choices):
            if _choice_key(c) == key:
                return i
        return None

    def encode(self, value: Any) -> float:
        """Map a choice to its integer code."""
        return float(self._index(value))

    def decode(self, u: float) -> Any:
        """Map a code (rounded, clipped) back to the original choice object."""
        i = min(max(int(round(float(u))), 0), len(self.choices) - 1)
        return self.choices[i]

    def validate(self, name: str, value: Any) -> Any:
        """Check that ``value`` is one of the choices; return the stored choice."""
        i = self._index(value) if isinstance(value, _JSON_SCALARS) else None
        if i is None:
            raise ValueError(
                f"Parameter {name!r}: value {value!r} is not one of {list(self.choices)!r}."
            )
        return self.choices[i]

    def grid(self) -> list[float]:
        """The integer codes ``0 .. k-1``."""
        return [float(i) for i in range(len(self.choices))]

    @property
    def upper_code(self) -> float:
        """The largest code, ``k - 1``."""
        return float(len(self.choices) - 1)

    def from_unit(self, u: float) -> Any:
        """Choice ``floor(u k)``: each choice takes an equal share of ``[0, 1)``."""
        n = len(self.choices)
        return self.choices[min(max(int(float(u) * n), 0), n - 1)]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable description."""
        return {"type": self.kind, "choices": list(self.choices)}


def _choice_key(value: Any) -> tuple[str, Any]:
    """A key that tells ``True`` from ``1`` and ``1`` from ``1.0``."""
    return (type(value).__name__, value)
