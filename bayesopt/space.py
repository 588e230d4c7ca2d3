"""Search spaces: parameter types, encoding to model columns and back.

The encoded space has one column per parameter. Floats and integers are mapped
to ``[0, 1]`` (linearly, or in log space for ``log=True``); categoricals are
integer codes ``0 .. k-1``; a ``Text`` parameter is the index ``0 .. m-1`` of
its candidate string, and its embedding matrix (``Space.embeddings``) tells
the models how the candidates relate. Decoding rounds integers, steps and log
scales in the user's units, so the value a model sees is exactly the value the
user gets. The parameter types live in ``bayesopt.parameters`` and
``bayesopt.text`` and are re-exported here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from bayesopt.parameters import (
    MAX_DISCRETE_VALUES,
    Categorical,
    Float,
    Int,
    Parameter,
    _Numeric,
)
from bayesopt.text import Text

__all__ = ["MAX_DISCRETE_VALUES", "Categorical", "Float", "Int", "Parameter", "Space", "Text"]


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
