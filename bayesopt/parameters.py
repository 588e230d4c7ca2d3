"""Parameter types of a search space: ``Float``, ``Int`` and ``Categorical``.

Each parameter maps a user value to one encoded column and back: floats and
integers to ``[0, 1]`` (linearly, in log space for ``log=True``, in logit
space for ``logit=True``), categoricals to integer codes ``0 .. k-1``.
Decoding rounds integers, steps and log scales in the user's units, so the
value a model sees is exactly the value the user gets. ``Text`` lives in
``bayesopt.text``; ``Space`` (``bayesopt.space``) puts parameters together.
"""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Categorical", "Float", "Int", "Parameter"]

# A numeric parameter with at most this many distinct values is handed to the
# acquisition optimizer as a discrete dimension; beyond it, as a continuous one
# whose value is rounded on decoding (botorch relaxes large grids the same way).
MAX_DISCRETE_VALUES = 1000

_JSON_SCALARS = (str, int, float, bool, type(None))

try:  # numpy booleans are not numbers either (numpy is optional for the space)
    from numpy import bool_ as np_bool
    from numpy import floating as np_floating
    from numpy import integer as np_integer
    from numpy import str_ as np_str
except ImportError:  # pragma: no cover
    np_bool = np_floating = np_integer = np_str = bool

# numpy scalars a categorical choice may be given as (turned into Python scalars)
_NUMPY_SCALARS = (np_bool, np_integer, np_floating, np_str)


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


class Categorical(Parameter):
    """An unordered choice among distinct JSON scalars (str, int, float, bool, None).

    Choices are matched by canonical type and value: ``True``, ``1`` and
    ``1.0`` are three different choices (in Python they compare equal), and
    they stay three through storage and back. Numpy scalars (``np.float64``,
    ``np.int64``, ``np.bool_``, ``np.str_``, e.g. from ``np.linspace``) are
    turned into the Python scalar of the same kind at construction. A member
    of an ``Enum`` with a ``str``, ``int`` or ``float`` mixin (``StrEnum``,
    ``IntEnum``, ``class Color(str, Enum)``) is kept as the choice object and
    matched by its value: its JSON form is its value, and a value read back
    from storage maps to the member.

    Args:
        choices: The admissible values; encoded as integer codes in this order.

    Raises:
        TypeError: ``choices`` is not a list, or a choice is not one of the
            types above.
        ValueError: ``choices`` is empty, a float choice is not finite, or two
            choices are the same (same canonical type and value).
    """

    kind: ClassVar[str] = "categorical"

    def __init__(self, choices: Sequence[Any]) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Iterable):
            raise TypeError(f"Categorical: `choices` must be a list, got {choices!r}.")
        given = tuple(choices)
        if not given:
            raise ValueError("Categorical: `choices` must not be empty, got [].")
        normalized: list[Any] = []
        keys: dict[tuple[str, Any], int] = {}
        for c in given:
            choice = _normalize_choice(c)
            key = _choice_key(choice)
            if key in keys:
                raise ValueError(
                    f"Categorical: duplicate choice {c!r} in {list(given)!r} "
                    f"(the same {key[0]} value as {given[keys[key]]!r})."
                )
            keys[key] = len(normalized)
            normalized.append(choice)
        self.choices: tuple[Any, ...] = tuple(normalized)
        self._keys: dict[tuple[str, Any], int] = keys

    def __repr__(self) -> str:
        return f"Categorical(choices={list(self.choices)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Categorical):
            return NotImplemented
        return list(self._keys) == list(other._keys) and self.choices == other.choices

    def __hash__(self) -> int:
        return hash(tuple(self._keys))

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, name):
            raise AttributeError(f"Categorical is immutable: cannot assign to {name!r}.")
        object.__setattr__(self, name, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Categorical, (self.choices,))

    def _index(self, value: Any) -> int | None:
        """The code of ``value`` (a choice, its Enum value, or a numpy scalar), or None."""
        key = _value_key(value)
        return None if key is None else self._keys.get(key)

    def encode(self, value: Any) -> float:
        """Map a choice (or its stored JSON form) to its integer code.

        Raises:
            ValueError: ``value`` is not one of the choices.
        """
        i = self._index(value)
        if i is None:
            raise ValueError(f"Categorical: value {value!r} is not one of {self._shown()}.")
        return float(i)

    def decode(self, u: float) -> Any:
        """Map a code (rounded, clipped) back to the original choice object."""
        i = min(max(int(round(float(u))), 0), len(self.choices) - 1)
        return self.choices[i]

    def validate(self, name: str, value: Any) -> Any:
        """Check that ``value`` is one of the choices; return the choice object.

        ``value`` may be the choice itself, a numpy scalar of the choice's
        canonical type (``np.float64(0.5)`` for ``0.5``) or, for an Enum
        choice, the member's value (what storage gives back).

        Raises:
            ValueError: ``value`` matches no choice by canonical type and value.
        """
        i = self._index(value)
        if i is None:
            raise ValueError(
                f"Parameter {name!r}: value {value!r} (of type {type(value).__name__}) "
                f"is not one of {self._shown()}."
            )
        return self.choices[i]

    def _shown(self) -> str:
        return repr(list(self.choices))

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
        """A JSON-serializable description (an Enum choice is written as its value)."""
        return {"type": self.kind, "choices": [key[1] for key in self._keys]}


def _canonical(value: Any) -> tuple[str, Any] | None:
    """``(canonical type, Python value)`` of a JSON scalar or numpy scalar, else None.

    Enum members are not handled here (see ``_value_key``); bool is tested
    before int because ``bool`` (not ``np.bool_``) is a subclass of ``int``.
    """
    if value is None:
        return ("none", None)
    if isinstance(value, (bool, np_bool)):
        return ("bool", bool(value))
    if isinstance(value, (int, np_integer)):
        return ("int", int(value))
    if isinstance(value, (float, np_floating)):
        return ("float", float(value))
    if isinstance(value, (str, np_str)):
        return ("str", str(value))
    return None


def _value_key(value: Any) -> tuple[str, Any] | None:
    """The matching key of any value: an Enum member by its value, else its canonical form."""
    if isinstance(value, enum.Enum):
        value = value.value
        if isinstance(value, enum.Enum):  # pragma: no cover - an Enum of Enums
            return None
    key = _canonical(value)
    if key is not None and key[0] == "float" and not math.isfinite(key[1]):
        return None
    return key


def _choice_key(choice: Any) -> tuple[str, Any]:
    """The key of a normalized choice: ``True``, ``1`` and ``1.0`` are three keys."""
    key = _value_key(choice)
    assert key is not None
    return key


def _normalize_choice(c: Any) -> Any:
    """A choice as kept: a Python scalar, or an Enum member with a JSON-scalar mixin.

    Raises:
        TypeError: ``c`` is of any other type.
        ValueError: ``c`` is a non-finite float.
    """
    if isinstance(c, enum.Enum):
        if not isinstance(c, (str, int, float)) or _canonical(c.value) is None:
            raise TypeError(
                f"Categorical: an Enum choice needs a str, int or float mixin "
                f"(StrEnum, IntEnum, `class {type(c).__name__}(str, Enum)`) so that its "
                f"JSON form is its value, got {c!r} of type {type(c).__name__} "
                f"with value {c.value!r}."
            )
        value = c.value
        choice = c
    elif type(c) in _JSON_SCALARS or isinstance(c, _NUMPY_SCALARS):
        value = c
        choice = _canonical(c)[1]
    else:
        raise TypeError(
            f"Categorical: choices must be JSON scalars (str, int, float, bool, None), "
            f"numpy scalars of those kinds, or members of a str/int/float Enum, "
            f"got {c!r} of type {type(c).__name__}."
        )
    if isinstance(value, (float, np_floating)) and not math.isfinite(value):
        raise ValueError(f"Categorical: choices must be finite, got {c!r}.")
    return choice
