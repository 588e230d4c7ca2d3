"""Acquisition optimization for every kind of domain, decided in one place.

- finite candidate set, or a fully discrete domain small enough to enumerate:
  exact search over the points (``optimize_acqf_discrete``);
- continuous only: multi-start L-BFGS-B from the best of ``raw_samples``
  quasi-random points (``optimize_acqf``);
- mixed with few discrete combinations: every combination is fixed in turn
  and the continuous part optimized (``optimize_acqf_mixed``);
- mixed with many: botorch's alternating discrete/continuous local search
  (``optimize_acqf_mixed_alternating``), never the Cartesian product.

Integers and categoricals are never relaxed and rounded afterwards, except
integer grids larger than ``bayesopt.space.MAX_DISCRETE_VALUES``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf, optimize_acqf_discrete, optimize_acqf_mixed
from botorch.optim.optimize_mixed import optimize_acqf_mixed_alternating
from torch import Tensor

from acquisitions.base import Domain

__all__ = ["OptimizerSettings", "choose_strategy", "optimize_acquisition"]

#: Enumerate the discrete combinations of a mixed domain up to this many.
MAX_ENUMERATED_COMBINATIONS = 10
#: Evaluate a fully discrete domain exhaustively up to this many points.
MAX_ENUMERATED_POINTS = 4096


@dataclass(frozen=True)
class OptimizerSettings:
    """Budget of the acquisition optimizer.

    Attributes:
        num_restarts: Gradient-based restarts.
        raw_samples: Quasi-random points screened for the restarts.
        maxiter: L-BFGS-B iterations per restart.
        sample_around_best: Also screen perturbations of the best evaluated
            points as starting points (sharpens local convergence).
    """

    num_restarts: int = 10
    raw_samples: int = 512
    maxiter: int = 200
    sample_around_best: bool = True

    def options(self) -> dict[str, object]:
        """Options for botorch's gradient-based optimizers."""
        return {"maxiter": self.maxiter, "sample_around_best": self.sample_around_best}


def _n_combinations(domain: Domain) -> float:
    n = 1.0
    for values in (*domain.discrete.values(), *domain.categorical.values()):
        n *= len(values)
    return n


def _discrete_cols(domain: Domain) -> dict[int, list[float]]:
    return {**domain.discrete, **domain.categorical}


def choose_strategy(domain: Domain) -> str:
    """Name of the optimizer used for ``domain`` (a key of ``STRATEGIES``)."""
    if domain.candidates is not None:
        return "candidates"
    n_discrete = len(domain.discrete) + len(domain.categorical)
    if n_discrete == 0:
        return "continuous"
    n_combos = _n_combinations(domain)
    if n_discrete == domain.dim:
        return "enumerate" if n_combos <= MAX_ENUMERATED_POINTS else "alternating"
    return "mixed" if n_combos <= MAX_ENUMERATED_COMBINATIONS else "alternating"


def _grid(domain: Domain) -> Tensor:
    cols = _discrete_cols(domain)
    values = [cols[i] for i in range(domain.dim)]
    return torch.tensor(
        list(itertools.product(*values)), dtype=domain.bounds.dtype, device=domain.bounds.device
    )


def _exclude(points: Tensor, avoid: Tensor | None, q: int) -> Tensor:
    """Drop ``avoid`` rows from ``points`` unless that leaves fewer than ``q``."""
    if avoid is None or avoid.numel() == 0:
        return points
    close = (
        torch.cdist(points, avoid.to(points), compute_mode="donot_use_mm_for_euclid_dist")
        .min(dim=-1)
        .values
        < 1e-9
    )  # exact distances: the matmul shortcut is off by ~1e-8
    kept = points[~close]
    return kept if kept.shape[0] >= q else points


def _opt_candidates(
    acqf: AcquisitionFunction, domain: Domain, q: int, s: OptimizerSettings, avoid: Tensor | None
) -> Tensor:
    choices = _exclude(domain.candidates, avoid, q)
    X, _ = optimize_acqf_discrete(acqf, q=q, choices=choices, unique=True)
    return X


def _opt_enumerate(
    acqf: AcquisitionFunction, domain: Domain, q: int, s: OptimizerSettings, avoid: Tensor | None
) -> Tensor:
    X, _ = optimize_acqf_discrete(
        acqf, q=q, choices=_exclude(_grid(domain), avoid, q), unique=True
    )
    return X


def _opt_continuous(
    acqf: AcquisitionFunction, domain: Domain, q: int, s: OptimizerSettings, avoid: Tensor | None
) -> Tensor:
    X, _ = optimize_acqf(
        acqf,
        bounds=domain.bounds,
        q=q,
        num_restarts=s.num_restarts,
        raw_samples=s.raw_samples,
        options={"maxiter": s.maxiter},
        sequential=q > 1,
    )
    return X


def _opt_mixed(
    acqf: AcquisitionFunction, domain: Domain, q: int, s: OptimizerSettings, avoid: Tensor | None
) -> Tensor:
    cols = _discrete_cols(domain)
    dims = sorted(cols)
    fixed = [
        dict(zip(dims, combo, strict=True))
        for combo in itertools.product(*(cols[i] for i in dims))
    ]
    X, _ = optimize_acqf_mixed(
        acqf,
        bounds=domain.bounds,
        q=q,
        num_restarts=s.num_restarts,
        raw_samples=s.raw_samples,
        fixed_features_list=fixed,
        options={"maxiter": s.maxiter},
    )
    return X


def _opt_alternating(
    acqf: AcquisitionFunction, domain: Domain, q: int, s: OptimizerSettings, avoid: Tensor | None
) -> Tensor:
    X, _ = optimize_acqf_mixed_alternating(
        acqf,
        bounds=domain.bounds,
        discrete_dims=domain.discrete or None,
        cat_dims=domain.categorical or None,
        q=q,
        num_restarts=s.num_restarts,
        raw_samples=s.raw_samples,
        options={"maxiter_continuous": s.maxiter},
    )
    return X


STRATEGIES: dict[str, Callable[..., Tensor]] = {
    "candidates": _opt_candidates,
    "enumerate": _opt_enumerate,
    "continuous": _opt_continuous,
    "mixed": _opt_mixed,
    "alternating": _opt_alternating,
}


def optimize_acquisition(
    acqf: AcquisitionFunction,
    domain: Domain,
    q: int = 1,
    settings: OptimizerSettings | None = None,
    avoid: Tensor | None = None,
) -> Tensor:
    """Maximize ``acqf`` over ``domain``.

    Args:
        acqf: The acquisition function (``batch x q x d -> batch``).
        domain: The encoded domain.
        q: Number of points to propose jointly.
        settings: Optimizer budget (defaults: ``OptimizerSettings()``).
        avoid: ``k x d`` points not to propose on finite domains (evaluated or
            pending), unless fewer than ``q`` points would remain.

    Returns:
        ``q x d`` proposed points, inside ``domain``.
    """
    settings = settings or OptimizerSettings()
    strategy = choose_strategy(domain)
    with warnings.catch_warnings():
        # botorch's "optimization failed to converge" warnings are expected with
        # flat acquisitions; the best restart is used either way.
        warnings.simplefilter("ignore")
        X = STRATEGIES[strategy](acqf, domain, q, settings, avoid)
    X = X.detach().reshape(q, domain.dim)
    if not torch.isfinite(X).all():
        raise RuntimeError(f"acquisition optimizer ({strategy}) returned non-finite points")
    return X.clamp(domain.bounds[0], domain.bounds[1])
