"""Map encoded columns to network inputs: numerics as they are, categoricals one-hot.

Neural surrogates (``dkl``, ``ensemble``, ``hmc_bnn``) need real-valued inputs;
the encoded space carries categoricals as integer codes. ``FeatureMap``
expands each categorical column into ``n_categories`` indicator columns and
keeps every other column (already in ``[0, 1]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from surrogates.base import Column

__all__ = ["FeatureMap"]


class FeatureMap:
    """One-hot expansion of the categorical columns of an encoded input.

    Args:
        columns: The ``d`` column descriptions of the encoded space.

    Raises:
        ValueError: a ``text`` column (embedded by the surrogates that support
            it, not here) or a categorical column without ``n_categories``.
    """

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        for c in self.columns:
            if c.kind == "text":
                raise ValueError(f"columns: text column {c.name!r} is not supported here.")
            if c.kind == "categorical" and not c.n_categories:
                raise ValueError(
                    f"columns: categorical column {c.name!r} needs n_categories, "
                    f"got {c.n_categories!r}."
                )
        #: Number of output features.
        self.dim = sum(c.n_categories if c.kind == "categorical" else 1 for c in self.columns)
        self.is_identity = all(c.kind != "categorical" for c in self.columns)

    def __call__(self, X: Tensor) -> Tensor:
        """Map ``batch x n x d`` encoded inputs to ``batch x n x dim`` features."""
        if self.is_identity:
            return X
        parts = []
        for i, c in enumerate(self.columns):
            x = X[..., i : i + 1]
            if c.kind == "categorical":
                codes = x.round().clamp(0, c.n_categories - 1).long().squeeze(-1)
                parts.append(torch.nn.functional.one_hot(codes, c.n_categories).to(X))
            else:
                parts.append(x)
        return torch.cat(parts, dim=-1)
