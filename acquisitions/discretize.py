"""Finite point sets standing in for a domain (Thompson sampling, discrete knowledge gradient).

A finite domain (a candidate set, or a discrete grid small enough to enumerate:
``acquisitions.optimize.choose_strategy`` says ``candidates`` or ``enumerate``)
is its own point set; any other domain is represented by scrambled Sobol
points with every discrete and categorical column at admissible values.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from acquisitions.base import Domain
from acquisitions.optimize import choose_strategy

__all__ = ["discretization", "finite_points", "is_finite", "sobol_points"]


def is_finite(domain: Domain) -> bool:
    """Whether the optimizer searches ``domain`` exhaustively over finitely many points."""
    return choose_strategy(domain) in ("candidates", "enumerate")


def finite_points(domain: Domain) -> Tensor:
    """``m x d`` points of a finite domain (its candidates, or its whole grid).

    Raises:
        ValueError: the domain is not finite (see ``is_finite``).
    """
    if domain.candidates is not None:
        return domain.candidates.to(domain.bounds)
    if not is_finite(domain):
        raise ValueError("finite_points: the domain has continuous columns or too many points")
    cols = {**domain.discrete, **domain.categorical}
    grid = list(itertools.product(*(cols[i] for i in range(domain.dim))))
    return torch.tensor(grid, dtype=domain.bounds.dtype, device=domain.bounds.device)


def sobol_points(domain: Domain, n: int, seed: int) -> Tensor:
    """``n x d`` scrambled Sobol points of ``domain``, discrete columns at admissible values.

    A column with ``k`` admissible values takes value ``floor(u k)`` of its
    sorted values for the Sobol coordinate ``u`` (each value equally often).
    """
    from torch.quasirandom import SobolEngine

    lo, hi = domain.bounds[0], domain.bounds[1]
    u = SobolEngine(domain.dim, scramble=True, seed=int(seed) % (2**31)).draw(
        n, dtype=domain.bounds.dtype
    )
    u = u.to(domain.bounds.device)
    X = lo + (hi - lo) * u
    for col, values in {**domain.discrete, **domain.categorical}.items():
        vals = torch.as_tensor(sorted(values), dtype=X.dtype, device=X.device)
        idx = (u[:, col] * len(vals)).long().clamp(max=len(vals) - 1)
        X[:, col] = vals[idx]
    return X


def discretization(domain: Domain, n: int, seed: int, include: Tensor | None = None) -> Tensor:
    """At most ``n`` points standing in for ``domain``, plus the rows of ``include``.

    Args:
        domain: The encoded domain.
        n: Number of points of the domain (a finite domain with more points
            is subsampled without replacement, seeded).
        seed: Seed of the Sobol scrambling or of the subsample.
        include: ``k x d`` points always included (e.g. the evaluated points).

    Returns:
        ``m x d`` distinct points, ``m <= n + k``.
    """
    if is_finite(domain):
        X = finite_points(domain)
        if X.shape[0] > n:
            g = torch.Generator().manual_seed(int(seed))
            X = X[torch.randperm(X.shape[0], generator=g)[:n].to(X.device)]
    else:
        X = sobol_points(domain, n, seed)
    if include is not None and include.numel():
        X = torch.cat([include.to(X), X])
    return torch.unique(X, dim=0)
