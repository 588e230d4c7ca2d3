"""The ``Text`` parameter: a finite set of strings, searched through their embeddings.

A ``Text`` column holds the index ``0 .. m-1`` of its candidate string; its
embedding matrix (``Text.embeddings``, computed once by ``bayesopt.embedding``)
tells the models how the candidates relate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from bayesopt.parameters import Parameter

__all__ = ["Text"]


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
