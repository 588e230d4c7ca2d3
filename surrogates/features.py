"""Map encoded columns to model inputs: numerics as they are, categoricals one-hot, Text embedded.

Neural surrogates (``dkl``, ``ensemble``, ``hmc_bnn``, ``ibnn``) need
real-valued inputs; the encoded space carries categoricals and Text
candidates as integer codes. ``FeatureMap`` expands each categorical column
into ``n_categories`` indicator columns, each Text column into the principal
coordinates of its candidates' embeddings (``text_features``), and keeps
every other column (already in ``[0, 1]``). The GP uses the same map with
categoricals kept as codes (``onehot=False``), under its categorical kernel.

Text coordinates (``text_features``): the ``m x e`` embedding matrix of the
candidates is centred over the candidates and projected on its top ``k``
principal axes (``k = TEXT_DIM`` by default, at most ``m - 1``), then every
coordinate is divided by the same number, the range of the first one, so the
first coordinate spans a unit interval (like a numeric column) and the others
keep their smaller, relative spread. The PCA is computed once per embedding
tensor (cached by identity) and costs ~0.1 s for 30,000 x 384.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

import torch
from gpytorch.kernels import Kernel
from torch import Tensor

from surrogates.base import Column

__all__ = ["TEXT_DIM", "FeatureMap", "MappedKernel", "text_features"]

#: Principal coordinates kept per Text column (measured on the text tasks, see README).
TEXT_DIM = 16

_CACHE: dict[tuple[int, int | None], tuple[weakref.ref, Tensor]] = {}
_LOCK = threading.Lock()


def text_features(embedding: Tensor, dim: int | None = TEXT_DIM) -> Tensor:
    """Principal coordinates of a Text column's candidates (module doc).

    Args:
        embedding: ``m x e`` embedding matrix (row ``k`` = candidate code ``k``).
        dim: Coordinates to keep (``None``: all ``min(m - 1, e)`` of them).

    Returns:
        ``m x k`` float64 coordinates, ``k = min(dim, m - 1, e)`` (at least 1).
    """
    key = (id(embedding), dim)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0]() is embedding:
            return hit[1]
    E = embedding.detach().to(dtype=torch.float64)
    m, e = E.shape
    k = max(1, min(dim or e, m - 1, e))
    C = E - E.mean(dim=0)
    # eigenvectors of the e x e scatter matrix: cheaper than an SVD of m x e for m >> e
    evals, evecs = torch.linalg.eigh(C.T @ C)
    axes = evecs[:, evals.argsort(descending=True)[:k]]
    Z = C @ axes
    Z = Z * torch.where(Z[:, :1].sum() >= 0, 1.0, -1.0)  # a fixed sign convention
    span = (Z[:, 0].max() - Z[:, 0].min()).clamp_min(1e-12)
    Z = Z / span
    with _LOCK:
        for stale in [k_ for k_, (ref, _) in _CACHE.items() if ref() is None]:
            del _CACHE[stale]
        _CACHE[key] = (weakref.ref(embedding), Z)
    return Z


class FeatureMap:
    """Expansion of categorical (one-hot) and Text (embedding coordinates) columns.

    Args:
        columns: The ``d`` column descriptions of the encoded space.
        onehot: One-hot categoricals (``False`` keeps their codes, one column each).
        text_dim: Principal coordinates per Text column (``text_features``).

    Raises:
        ValueError: a categorical or Text column without ``n_categories``, or a
            Text column without an ``m x e`` embedding matrix.
    """

    def __init__(
        self, columns: Sequence[Column], onehot: bool = True, text_dim: int | None = TEXT_DIM
    ) -> None:
        self.columns = list(columns)
        self.onehot = onehot
        self.tables: dict[int, Tensor] = {}
        widths = []
        for i, c in enumerate(self.columns):
            if c.kind in ("categorical", "text") and not c.n_categories:
                raise ValueError(
                    f"columns: {c.kind} column {c.name!r} needs n_categories, "
                    f"got {c.n_categories!r}."
                )
            if c.kind == "text":
                E = c.embedding
                if E is None or getattr(E, "ndim", 0) != 2 or E.shape[0] != c.n_categories:
                    raise ValueError(
                        f"columns: text column {c.name!r} needs an embedding matrix of "
                        f"{c.n_categories} rows, got {None if E is None else tuple(E.shape)}."
                    )
                self.tables[i] = text_features(torch.as_tensor(E), text_dim)
                widths.append(self.tables[i].shape[1])
            elif c.kind == "categorical" and onehot:
                widths.append(c.n_categories)
            else:
                widths.append(1)
        #: Output features per input column.
        self.widths: list[int] = widths
        #: Number of output features.
        self.dim = sum(widths)
        #: Output feature indices holding categorical codes (``onehot=False`` only).
        self.code_features: list[int] = (
            []
            if onehot
            else [sum(widths[:i]) for i, c in enumerate(self.columns) if c.kind == "categorical"]
        )
        self.is_identity = not self.tables and (
            not onehot or all(c.kind != "categorical" for c in self.columns)
        )

    def __call__(self, X: Tensor) -> Tensor:
        """Map ``batch x n x d`` encoded inputs to ``batch x n x dim`` features."""
        if self.is_identity:
            return X
        parts = []
        for i, c in enumerate(self.columns):
            x = X[..., i : i + 1]
            if i in self.tables:
                table = self.tables[i].to(X)
                codes = x.detach().round().clamp(0, c.n_categories - 1).long().squeeze(-1)
                parts.append(table[codes])
            elif c.kind == "categorical" and self.onehot:
                codes = x.round().clamp(0, c.n_categories - 1).long().squeeze(-1)
                parts.append(torch.nn.functional.one_hot(codes, c.n_categories).to(X))
            else:
                parts.append(x)
        return torch.cat(parts, dim=-1)


class MappedKernel(Kernel):
    """A kernel evaluated on mapped inputs: ``k(x, x') = base(f(x), f(x'))``.

    Args:
        base: The kernel on features (it may be a sum or product of kernels
            with ``active_dims`` on the feature columns).
        feature_map: A callable mapping ``... x d`` inputs to ``... x dim`` features.
    """

    def __init__(self, base: Kernel, feature_map: FeatureMap | torch.nn.Module) -> None:
        super().__init__()
        self.base = base
        self.feature_map = feature_map

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:
        """Covariance ``n1 x n2`` (``n1`` with ``diag``) of ``base`` on the features."""
        z1 = self.feature_map(x1)
        z2 = z1 if x2 is x1 else self.feature_map(x2)
        return self.base(z1, z2, diag=diag, **params)
