"""Search spaces: parameter types, encoding to model columns and back.

The encoded space has one column per parameter. Floats and integers are mapped
to ``[0, 1]`` (linearly, or in log space for ``log=True``); categoricals are
integer codes ``0 .. k-1``; a ``Text`` parameter is the index ``0 .. m-1`` of
its candidate string, and its embedding matrix (``Space.embeddings``) tells
the models how the candidates relate. Decoding rounds integers, steps and log
scales in the user's units, so the value a model sees is exactly the value the
user gets.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["Categorical", "Float", "Int", "Parameter", "Space", "Text"]

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


class _StoredCallable:
    """Stands in for a callable embedder read back from storage (code cannot be stored).

    Its ``cache_id`` lets ``embed`` find the matrix in the disk cache; when it
    is not there, calling it raises ``EmbedderUnavailableError``.
    """

    def __init__(self, label: str, cache_id: str | None) -> None:
        self.label = label
        self.cache_id = cache_id

    def __call__(self, texts: list[str]) -> Any:
        from bayesopt.embedding import EmbedderUnavailableError

        raise EmbedderUnavailableError(
            f"Text parameter: its embedder was the Python callable {self.label!r}, which a "
            f"stored study cannot keep, and its embeddings are not in the disk cache "
            f"(cache_id={self.cache_id!r}). Reopen the study with "
            f"Optimizer(space, storage=..., study=...) where the space has "
            f"Text(..., embedder=<the same callable>), or register the embedder by name "
            f"(bayesopt.embedding.register_embedder) and use the name."
        )

    def __repr__(self) -> str:
        return f"<stored callable {self.label}>"


class Text(Parameter):
    """A choice among a finite list of distinct strings, modelled through their embeddings.

    The encoded column is the candidate's index ``0 .. m-1``; models see the
    candidate's row of the embedding matrix (``embeddings()``, ``m x e``,
    computed on first use and cached on disk by content hash; see
    ``bayesopt.embedding``). Values come back as the exact candidate ``str``.

    Args:
        candidates: The distinct strings (tens of thousands are fine).
        embedder: A registered embedder name (``"minilm"``, ``"hashing"``,
            ``bayesopt.embedding.available_embedders()``) or any callable
            ``list[str] -> m x e`` array. A stored study keeps a name; a
            callable cannot be stored: ``Optimizer.load`` in a new process
            then uses the disk-cached embeddings when the callable has a
            ``cache_id`` attribute, and otherwise raises
            ``EmbedderUnavailableError`` at the first model-based ask (reopen
            with ``Optimizer(space, storage=..., study=...)`` instead).

    Raises:
        TypeError: ``candidates`` is not a list of strings, or ``embedder`` is
            neither a name nor callable.
        ValueError: no candidates, a duplicate, or an unknown embedder name.
    """

    kind: ClassVar[str] = "text"

    def __init__(self, candidates: Sequence[str], embedder: Any = "minilm") -> None:
        if isinstance(embedder, str):
            from bayesopt.embedding import available_embedders

            if embedder not in available_embedders():
                raise ValueError(
                    f"Text: unknown embedder {embedder!r}; registered embedders are "
                    f"{available_embedders()} (or pass a callable list[str] -> array)."
                )
        elif not callable(embedder):
            raise TypeError(
                f"Text: `embedder` must be a registered name or a callable, got {embedder!r}."
            )
        self._set(candidates, embedder)

    def _set(self, candidates: Sequence[str], embedder: Any) -> None:
        if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Iterable):
            raise TypeError(f"Text: `candidates` must be a list of strings, got {candidates!r}.")
        cands = tuple(candidates)
        if not cands:
            raise ValueError("Text: `candidates` must not be empty, got [].")
        index: dict[str, int] = {}
        for i, c in enumerate(cands):
            if not isinstance(c, str):
                raise TypeError(
                    f"Text: candidate {i} is {c!r} of type {type(c).__name__}, not a str."
                )
            j = index.setdefault(c, i)
            if j != i:
                raise ValueError(f"Text: duplicate candidate {c!r} at positions {j} and {i}.")
        self.candidates: tuple[str, ...] = cands
        self.embedder = embedder
        self._index = index
        self._embeddings: Any = None
        #: Derived data of consumers (e.g. the torch copy of the embeddings), per object.
        self.cache: dict[str, Any] = {}

    # --- identity -------------------------------------------------------------------
    def _embedder_json(self) -> Any:
        if isinstance(self.embedder, str):
            return self.embedder
        if isinstance(self.embedder, _StoredCallable):
            return {"callable": self.embedder.label, "cache_id": self.embedder.cache_id}
        fn = self.embedder
        label = (
            f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
        )
        cid = getattr(fn, "cache_id", None)
        return {"callable": label, "cache_id": None if cid is None else str(cid)}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Text)
            and self.candidates == other.candidates
            and self._embedder_json() == other._embedder_json()
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.candidates))

    def __repr__(self) -> str:
        preview = ", ".join(repr(c) for c in self.candidates[:2])
        more = ", ..." if len(self.candidates) > 2 else ""
        n = len(self.candidates)
        return f"Text([{preview}{more}] ({n} candidates), embedder={self.embedder!r})"

    # --- the column -------------------------------------------------------------------
    def encode(self, value: Any) -> float:
        """Map a candidate to its index."""
        return float(self._index[value])

    def decode(self, u: float) -> str:
        """Map an index (rounded, clipped) back to the candidate string."""
        i = min(max(int(round(float(u))), 0), len(self.candidates) - 1)
        return self.candidates[i]

    def from_unit(self, u: float) -> str:
        """Candidate ``floor(u m)``: each candidate takes an equal share of ``[0, 1)``."""
        n = len(self.candidates)
        return self.candidates[min(max(int(float(u) * n), 0), n - 1)]

    def validate(self, name: str, value: Any) -> str:
        """Check that ``value`` is one of the candidates; return it."""
        if not isinstance(value, str):
            raise TypeError(
                f"Parameter {name!r}: expected one of its candidate strings, got {value!r} "
                f"of type {type(value).__name__}."
            )
        if value not in self._index:
            preview = (
                [*self.candidates[:3], "..."] if len(self.candidates) > 3 else self.candidates
            )
            raise ValueError(
                f"Parameter {name!r}: value {value!r} is not one of its "
                f"{len(self.candidates)} candidates {list(preview)!r}."
            )
        return value

    def grid(self) -> list[float]:
        """The indices ``0 .. m-1``."""
        return [float(i) for i in range(len(self.candidates))]

    @property
    def upper_code(self) -> float:
        """The largest index, ``m - 1``."""
        return float(len(self.candidates) - 1)

    def embeddings(self) -> Any:
        """The ``m x e`` float32 embedding matrix (numpy, read-only), computed once.

        Raises:
            EmbedderUnavailableError: the embedder cannot run here (a missing
                package, an unregistered name, or a stored callable whose
                embeddings are not cached).
        """
        if self._embeddings is None:
            from bayesopt.embedding import EmbedderUnavailableError, available_embedders, embed

            if isinstance(self.embedder, str) and self.embedder not in available_embedders():
                raise EmbedderUnavailableError(
                    f"Text: the embedder {self.embedder!r} of this stored space is not "
                    f"registered in this process; call bayesopt.embedding.register_embedder"
                    f"({self.embedder!r}, factory) first."
                )
            self._embeddings = embed(list(self.candidates), self.embedder)
        return self._embeddings

    # --- persistence --------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """``{"type": "text", "candidates": [...], "embedder": name | {"callable": ...}}``."""
        return {
            "type": self.kind,
            "candidates": list(self.candidates),
            "embedder": self._embedder_json(),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Text:
        """Rebuild from ``to_json``; a stored callable becomes a cache-only stand-in.

        A stored name is kept even when this process has not registered it
        (yet): reading a study must not need its embedder; the check happens
        when the embeddings are needed.
        """
        embedder = spec.get("embedder", "minilm")
        if isinstance(embedder, Mapping):
            embedder = _StoredCallable(str(embedder.get("callable")), embedder.get("cache_id"))
        text = cls.__new__(cls)
        text._set(spec["candidates"], embedder)
        return text


PARAMETER_TYPES: dict[str, type[Parameter]] = {
    "float": Float,
    "int": Int,
    "categorical": Categorical,
    "text": Text,
}


class Space:
    """An ordered mapping of parameter names to parameters.

    Args:
        params: ``{name: Float | Int | Categorical | Text}``; the order of the
            mapping is the column order of the encoded space.
    """

    def __init__(self, params: Mapping[str, Parameter]) -> None:
        if isinstance(params, Space):
            params = params.params
        if not isinstance(params, Mapping):
            raise TypeError(f"space: expected a dict of parameters, got {params!r}.")
        if not params:
            raise ValueError("space: the search space is empty; give at least one parameter.")
        for name, p in params.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"space: parameter names must be non-empty strings, got {name!r}.")
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"space: parameter {name!r} must be Float, Int, Categorical or Text, "
                    f"got {p!r}."
                )
        self.params: dict[str, Parameter] = dict(params)
        self.names: list[str] = list(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.dumps() == other.dumps()

    def __repr__(self) -> str:
        return f"Space({self.params!r})"

    # --- validation -------------------------------------------------------------
    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check a full assignment; return it with plain Python values, in column order.

        Raises:
            TypeError: ``params`` is not a dict, or a value has the wrong type.
            ValueError: missing or unknown names, or a value outside the space.
        """
        if not isinstance(params, Mapping):
            raise TypeError(f"params: expected a dict of parameter values, got {params!r}.")
        unknown = [k for k in params if k not in self.params]
        if unknown:
            raise ValueError(f"params: unknown parameter(s) {unknown!r}; expected {self.names!r}.")
        missing = [k for k in self.names if k not in params]
        if missing:
            raise ValueError(f"params: missing parameter(s) {missing!r}.")
        return {k: p.validate(k, params[k]) for k, p in self.params.items()}

    # --- encoding -----------------------------------------------------------------
    def encode(self, params: Mapping[str, Any]) -> list[float]:
        """Encode one assignment as a row of ``d`` model column values."""
        return [p.encode(params[k]) for k, p in self.params.items()]

    def decode(self, row: Sequence[float]) -> dict[str, Any]:
        """Decode a row of ``d`` column values to user values (rounded, plain types)."""
        return {k: p.decode(u) for (k, p), u in zip(self.params.items(), row, strict=True)}

    def from_unit(self, row: Sequence[float]) -> dict[str, Any]:
        """Decode a point of the unit cube (Sobol) to user values.

        Categoricals and Text candidates take equal sub-intervals of ``[0, 1)``.
        """
        return {k: p.from_unit(u) for (k, p), u in zip(self.params.items(), row, strict=True)}

    # --- what models and optimizers need -----------------------------------------
    def bounds(self) -> list[tuple[float, float]]:
        """Encoded bounds per column: ``(0, 1)`` numerics, ``(0, k-1)`` categoricals and Text."""
        return [(0.0, p.upper_code) for p in self.params.values()]

    def categorical_columns(self) -> dict[int, int]:
        """``{column: number of categories}`` for categorical parameters."""
        return {
            i: len(p.choices)
            for i, p in enumerate(self.params.values())
            if isinstance(p, Categorical)
        }

    def text_columns(self) -> dict[int, int]:
        """``{column: number of candidates}`` for Text parameters."""
        return {
            i: len(p.candidates) for i, p in enumerate(self.params.values()) if isinstance(p, Text)
        }

    def embeddings(self) -> dict[int, Any]:
        """``{column: m x e float32 embedding matrix}`` of the Text parameters.

        Each matrix is computed on first use (or read from the disk cache) and
        kept by its ``Text``, so later calls cost nothing.
        """
        return {
            i: p.embeddings() for i, p in enumerate(self.params.values()) if isinstance(p, Text)
        }

    def discrete_columns(self) -> dict[int, list[float]]:
        """``{column: encoded values}`` for integer and stepped parameters with a small grid."""
        out = {}
        for i, p in enumerate(self.params.values()):
            if isinstance(p, _Numeric):
                g = p.grid()
                if g is not None:
                    out[i] = g
        return out

    def n_combinations(self) -> float:
        """Number of points of a fully discrete space (``inf`` if any column is continuous)."""
        n = 1.0
        for p in self.params.values():
            if isinstance(p, Text):
                n *= len(p.candidates)
                continue
            g = p.grid()
            if g is None:
                return math.inf
            n *= len(g)
        return n

    # --- persistence ----------------------------------------------------------------
    def to_json(self) -> dict[str, dict[str, Any]]:
        """``{name: parameter description}``; round-trips through ``from_json``."""
        return {k: p.to_json() for k, p in self.params.items()}

    def dumps(self) -> str:
        """The canonical JSON text of ``to_json``."""
        return json.dumps(self.to_json(), sort_keys=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Mapping[str, Any]] | str) -> Space:
        """Rebuild a space from ``to_json`` output (a dict or its JSON text)."""
        if isinstance(data, str):
            data = json.loads(data)
        params: dict[str, Parameter] = {}
        for name, spec in data.items():
            spec = dict(spec)
            kind = spec.pop("type")
            if kind not in PARAMETER_TYPES:
                raise ValueError(f"space: unknown parameter type {kind!r} for {name!r}.")
            params[name] = PARAMETER_TYPES[kind].from_spec(spec)
        return cls(params)

    def diff(self, other: Space) -> list[str]:
        """Human-readable differences between two spaces (empty when equal)."""
        # compare JSON text, so True, 1 and 1.0 are different choices
        a = {k: json.dumps(v) for k, v in self.to_json().items()}
        b = {k: json.dumps(v) for k, v in other.to_json().items()}
        out = [f"parameter {k!r} only in the stored space" for k in a if k not in b]
        out += [f"parameter {k!r} not in the stored space" for k in b if k not in a]
        out += [
            f"parameter {k!r}: stored {_short(a[k])} vs given {_short(b[k])}"
            for k in a
            if k in b and a[k] != b[k]
        ]
        if not out and list(a) != list(b):
            out.append(f"parameter order: stored {list(a)} vs given {list(b)}")
        return out


def _short(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters (a Text parameter's JSON can be megabytes)."""
    return text if len(text) <= limit else f"{text[: limit - 40]} ... ({len(text)} characters)"
