"""Disk cache of embedding matrices, keyed by a content hash of (embedder id, texts).

A matrix is stored as ``<dir>/<embedder slug>-<sha256>.npy`` and written
atomically (a temporary file in the same folder, then ``os.replace``), so
several workers may fill the cache at once and a reader never sees half a file.
The folder is ``$BAYESOPT_CACHE_DIR/embeddings`` when that variable is set,
else ``$XDG_CACHE_HOME/bayesopt/embeddings`` (``~/.cache/bayesopt/embeddings``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["cache_dir", "cache_path", "content_key", "load", "save"]

logger = logging.getLogger(__name__)

#: Bumped when the key derivation or the file layout changes.
_KEY_VERSION = b"bayesopt-embedding-cache-v1\0"


def cache_dir() -> Path:
    """The folder of cached embedding matrices (not created here)."""
    root = os.environ.get("BAYESOPT_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "embeddings"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "bayesopt" / "embeddings"


def content_key(embedder_id: str, texts: Sequence[str]) -> str:
    """SHA-256 hex digest of an embedder id and an ordered list of texts.

    Each text is length-prefixed, so ``["ab", "c"]`` and ``["a", "bc"]`` differ.
    """
    h = hashlib.sha256(_KEY_VERSION)
    ident = embedder_id.encode("utf-8")
    h.update(len(ident).to_bytes(8, "little") + ident)
    h.update(len(texts).to_bytes(8, "little"))
    for t in texts:
        b = t.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def cache_path(embedder_id: str, key: str) -> Path:
    """Path of the cached matrix of ``key`` (the embedder id, slugged, helps a human)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", embedder_id)[:48]
    return cache_dir() / f"{slug}-{key}.npy"


def load(embedder_id: str, key: str, n: int) -> np.ndarray | None:
    """The cached ``n x e`` float32 matrix of ``key``, or None (missing or unreadable)."""
    path = cache_path(embedder_id, key)
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        logger.warning("ignoring unreadable embedding cache file %s: %s", path, exc)
        return None
    if arr.ndim != 2 or arr.shape[0] != n or arr.dtype != np.float32:
        logger.warning("ignoring embedding cache file %s of shape %s", path, arr.shape)
        return None
    return arr


def save(embedder_id: str, key: str, arr: np.ndarray) -> Path | None:
    """Write ``arr`` atomically; returns the path, or None when the folder is not writable."""
    path = cache_path(embedder_id, key)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("embedding cache not written (%s): %s", path, exc)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        return None
    return path
