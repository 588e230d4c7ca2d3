"""Acquisition optimization for every kind of domain, decided in one place.

- finite candidate set, or a fully discrete domain small enough to enumerate:
  exact search over the points (``optimize_acqf_discrete``);
- continuous only: multi-start L-BFGS-B from the best of ``raw_samples``
  quasi-random points (``optimize_acqf``);
- mixed with few discrete combinations: every combination is fixed in turn
  and the continuous part optimized (``optimize_acqf_mixed``);
- mixed with many: botorch's alternating discrete/continuous local search
  (``optimize_acqf_mixed_alternating``), never the Cartesian product;
- a categorical column with more than ``LARGE_CATEGORICAL`` values (a ``Text``
  parameter's candidates): fully discrete domains up to
  ``MAX_ENUMERATED_LARGE`` points are enumerated; beyond that, or with
  continuous columns, ``acquisitions.coordinate`` alternates exhaustive
  coordinate steps over each discrete column (all of a large column's values,
  or a seeded subset of ``candidate_subset``) with L-BFGS-B on the continuous
  columns. Botorch's alternating optimizer would try only 20 random values of
  such a column per step, drawn from Python's unseeded ``random``.

Finite domains (enumerated grids and candidate sets) never propose an
evaluated or pending point unless ``OptimizerSettings.allow_repeats`` is set
(or every point has been tried); ``OptimizerSettings.candidate_subset`` scores
a seeded random subset of the remaining points per proposal (INSTINCT scores
1,000 of 10,000 per round). ``finite_candidates`` applies both rules to a
domain, so the acquisition sees the same candidate set as the optimizer.

Integers and categoricals are never relaxed and rounded afterwards, except
integer grids larger than ``bayesopt.space.MAX_DISCRETE_VALUES``.

A batch (``q > 1``) over a domain with discrete columns has distinct rows.
Finite domains pick ``q`` distinct points jointly; the other strategies pick
greedily, each point pending for the next (``greedy_batch``). Pending points
lower a good acquisition's value where they are, but not every acquisition's
(a flat surface, Thompson draws that ignore them, a hand-written one), so a
pick that repeats an earlier pick of the batch (same discrete values,
continuous values within ``REPEAT_TOLERANCE`` of the range) is searched again
with the discrete combinations of the batch so far excluded, while the domain
has untaken ones. On continuous domains distinctness rests on the pending points.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from botorch.acquisition import AcquisitionFunction, OneShotAcquisitionFunction
from botorch.optim import optimize_acqf, optimize_acqf_discrete, optimize_acqf_mixed
from botorch.optim.optimize_mixed import optimize_acqf_mixed_alternating
from torch import Tensor

from acquisitions.base import Domain

__all__ = [
    "CandidatesExhaustedWarning",
    "OptimizerSettings",
    "choose_strategy",
    "finite_candidates",
    "greedy_batch",
    "optimize_acquisition",
]

#: Enumerate the discrete combinations of a mixed domain up to this many.
MAX_ENUMERATED_COMBINATIONS = 10
#: Evaluate a fully discrete domain exhaustively up to this many points.
MAX_ENUMERATED_POINTS = 4096
#: A categorical column with more values than this is "large" (botorch's
#: alternating optimizer samples 20 of its values per step; ours scores them all).
LARGE_CATEGORICAL = 20
#: Enumerate a fully discrete domain with a large categorical up to this many points.
MAX_ENUMERATED_LARGE = 100_000
#: Two picks of a batch with the same discrete values and continuous values this close
#: (as a fraction of each column's range) are the same point.
REPEAT_TOLERANCE = 1e-6
#: Subtracted from the acquisition value of an excluded point (finite, so that
#: botorch's Boltzmann start selection and L-BFGS-B stay well defined).
EXCLUDED_PENALTY = 1e10


class CandidatesExhaustedWarning(RuntimeWarning):
    """A finite domain has fewer untried points than asked for: tried points come back."""


@dataclass(frozen=True)
class OptimizerSettings:
    """Budget of the acquisition optimizer.

    Attributes:
        num_restarts: Gradient-based restarts.
        raw_samples: Quasi-random points screened for the restarts.
        maxiter: L-BFGS-B iterations per restart.
        screen_iterations: Continuous single-point proposals run every restart
            for this many L-BFGS-B iterations, then only the best ``survivors``
            on to ``maxiter`` (``None``: every restart to ``maxiter``). The
            restarts run in lock-step, so the slowest one sets the cost; with
            10 restarts, screening after 10 iterations and keeping 3 cut an
            ask at 200 observations (6-D) from 0.15 s to 0.10 s with the same
            regret (``benchmarks/compare_optuna.py``, 10 seeds).
        survivors: Restarts kept after the screening iterations.
        candidate_subset: Score at most this many points of a finite domain
            per proposal, a seeded random subset of those not yet tried (all
            when ``None``); in the coordinate search of mixed domains, the
            number of values of a large categorical (Text) column scored per
            step (default there: ``COORDINATE_SUBSET``).
        allow_repeats: Let finite domains propose evaluated and pending points
            again (for noisy objectives worth re-measuring); by default they
            are excluded until every point has been tried.
    """

    num_restarts: int = 10
    raw_samples: int = 512
    maxiter: int = 200
    screen_iterations: int | None = 10
    survivors: int = 3
    candidate_subset: int | None = None
    allow_repeats: bool = False

    def __post_init__(self) -> None:
        for name in ("candidate_subset", "screen_iterations", "survivors"):
            n = getattr(self, name)
            if n is None and name != "survivors":
                continue
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{name}: expected a positive integer, got {n!r}.")
        if not isinstance(self.allow_repeats, bool):
            raise TypeError(f"allow_repeats: expected a bool, got {self.allow_repeats!r}.")


def _n_combinations(domain: Domain) -> float:
    n = 1.0
    for values in (*domain.discrete.values(), *domain.categorical.values()):
        n *= len(values)
    return n


def _discrete_cols(domain: Domain) -> dict[int, list[float]]:
    return {**domain.discrete, **domain.categorical}


def has_large_categorical(domain: Domain) -> bool:
    """Whether a categorical column has more than ``LARGE_CATEGORICAL`` values."""
    return any(len(v) > LARGE_CATEGORICAL for v in domain.categorical.values())


def choose_strategy(domain: Domain) -> str:
    """Name of the optimizer used for ``domain`` (a key of ``STRATEGIES``)."""
    if domain.candidates is not None:
        return "candidates"
    n_discrete = len(domain.discrete) + len(domain.categorical)
    if n_discrete == 0:
        return "continuous"
    n_combos = _n_combinations(domain)
    large = has_large_categorical(domain)
    if n_discrete == domain.dim:
        if n_combos <= MAX_ENUMERATED_POINTS or (large and n_combos <= MAX_ENUMERATED_LARGE):
            return "enumerate"
        return "coordinate" if large else "alternating"
    if large:
        return "coordinate"
    return "mixed" if n_combos <= MAX_ENUMERATED_COMBINATIONS else "alternating"


def _grid(domain: Domain) -> Tensor:
    cols = _discrete_cols(domain)
    values = [
        torch.as_tensor(cols[i], dtype=domain.bounds.dtype, device=domain.bounds.device)
        for i in range(domain.dim)
    ]
    return torch.cartesian_prod(*values).reshape(-1, domain.dim)


def _matches(points: Tensor, avoid: Tensor) -> Tensor:
    """``m`` booleans: whether each row of ``points`` equals a row of ``avoid`` (to 1e-9)."""
    out = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    avoid = avoid.to(points)
    step = max(1, 2**22 // max(1, avoid.shape[0]))  # at most ~4M distances (32 MB) at once
    for start in range(0, points.shape[0], step):
        chunk = points[start : start + step]
        dist = torch.cdist(chunk, avoid, compute_mode="donot_use_mm_for_euclid_dist")
        out[start : start + step] = dist.min(dim=-1).values < 1e-9
    return out  # exact distances: the matmul shortcut is off by ~1e-8


def _exclude(points: Tensor, avoid: Tensor | None, q: int) -> Tensor:
    """Drop ``avoid`` rows from ``points`` unless that leaves fewer than ``q``."""
    if avoid is None or avoid.numel() == 0:
        return points
    kept = points[~_matches(points, avoid)]
    if kept.shape[0] >= q:
        return kept
    warnings.warn(
        f"acquisition: only {kept.shape[0]} of {points.shape[0]} points of the finite domain "
        f"are untried and {q} were asked for; proposing tried points again.",
        CandidatesExhaustedWarning,
        stacklevel=4,
    )
    return points


def _repeats(x: Tensor, picks: Tensor, domain: Domain) -> bool:
    """Whether ``x`` (``d``) is the same point as a row of ``picks`` (``k x d``)."""
    if picks.numel() == 0:
        return False
    width = (domain.bounds[1] - domain.bounds[0]).to(x).clamp_min(1e-12)
    tol = torch.full_like(width, REPEAT_TOLERANCE) * width
    for c in _discrete_cols(domain):
        tol[c] = 1e-9
    return bool(((picks.to(x) - x).abs() <= tol).all(dim=-1).any())


class _Excluding(AcquisitionFunction):
    """``acqf`` less ``EXCLUDED_PENALTY`` where discrete columns equal a row of ``taken``."""

    def __init__(self, acqf: AcquisitionFunction, cols: list[int], taken: Tensor) -> None:
        super().__init__(model=getattr(acqf, "model", None))
        self.acqf = acqf
        self.cols = cols
        self.register_buffer("taken", taken[:, cols])

    def forward(self, X: Tensor) -> Tensor:  # batch x q x d -> batch
        values = self.acqf(X)
        Xd = X[..., self.cols].unsqueeze(-2)  # batch x q x 1 x c
        hit = ((Xd - self.taken.to(X)).abs() < 1e-9).all(-1).any(-1).any(-1)  # batch
        return values - EXCLUDED_PENALTY * hit.to(values)


def greedy_batch(
    acqf: AcquisitionFunction,
    domain: Domain,
    q: int,
    pick: Callable[[Tensor | None], Tensor],
    on_pick: Callable[[Tensor], None] | None = None,
) -> Tensor:
    """``q`` distinct points chosen one at a time, each pending for the next.

    ``pick(exclude)`` returns one point (``d`` or ``1 x d``) maximizing ``acqf``
    given its current pending points, avoiding the discrete combinations of
    the rows of ``exclude`` (``k x d``) when ``exclude`` is not ``None``. A
    pick that repeats an earlier pick of the batch is picked again with the
    batch's combinations excluded, unless that would exclude every combination.

    Args:
        acqf: The acquisition function; its ``X_pending`` is restored afterwards.
        domain: The encoded domain.
        q: Number of points.
        pick: One greedy step (see above).
        on_pick: Called with each chosen point (``d``).

    Returns:
        ``q x d`` points.
    """
    n_combinations = _n_combinations(domain)
    base = getattr(acqf, "X_pending", None)  # analytic acquisitions have none (q = 1)
    picks: list[Tensor] = []
    try:
        for _ in range(q):
            x = pick(None).detach().reshape(domain.dim)
            if picks and len(picks) < n_combinations and _repeats(x, torch.stack(picks), domain):
                x = pick(torch.stack(picks)).detach().reshape(domain.dim)
            picks.append(x)
            if on_pick is not None:
                on_pick(x)
            if q > 1:
                chosen = torch.stack(picks)
                acqf.set_X_pending(chosen if base is None else torch.cat([base, chosen.to(base)]))
    finally:
        if q > 1:
            acqf.set_X_pending(base)
    return torch.stack(picks)


def _subset(points: Tensor, n: int | None, seed: int | None) -> Tensor:
    """At most ``n`` rows of ``points``, a random subset seeded by ``seed``, in their order."""
    if n is None or points.shape[0] <= n:
        return points
    g = torch.Generator()
    if seed is None:
        g.manual_seed(int(torch.randint(2**31 - 1, ()).item()))  # the (forked) global stream
    else:
        g.manual_seed(int(seed))
    keep = torch.randperm(points.shape[0], generator=g)[:n].sort().values
    return points[keep.to(points.device)]


def finite_candidates(
    domain: Domain,
    avoid: Tensor | None = None,
    q: int = 1,
    settings: OptimizerSettings | None = None,
    seed: int | None = None,
) -> Domain:
    """``domain`` with the candidates this proposal may choose from, if it is finite.

    The candidates of a finite domain (its candidate set or its enumerated
    grid) minus the ``avoid`` rows (unless ``settings.allow_repeats``, or
    fewer than ``q`` would remain), then a seeded random subset of
    ``settings.candidate_subset`` of them. Other domains come back unchanged.

    Args:
        domain: The encoded domain.
        avoid: ``k x d`` evaluated and pending points.
        q: Number of points to be proposed.
        settings: ``allow_repeats`` and ``candidate_subset``.
        seed: Seed of the subset (the proposal's seed).

    Returns:
        A domain whose ``candidates`` are the ``m' x d`` admissible points.
    """
    s = settings or OptimizerSettings()
    strategy = choose_strategy(domain)
    if strategy not in ("candidates", "enumerate"):
        return domain
    points = domain.candidates if strategy == "candidates" else _grid(domain)
    if not s.allow_repeats:
        points = _exclude(points, avoid, q)
    points = _subset(points, s.candidate_subset, seed)
    return replace(domain, candidates=points)


def _opt_finite(
    acqf: AcquisitionFunction,
    domain: Domain,
    q: int,
    s: OptimizerSettings,
    avoid: Tensor | None,
    seed: int | None = None,
) -> Tensor:
    choices = finite_candidates(domain, avoid, q, s, seed).candidates
    X, _ = optimize_acqf_discrete(acqf, q=q, choices=choices, unique=True)
    return X


def _opt_coordinate(
    acqf: AcquisitionFunction,
    domain: Domain,
    q: int,
    s: OptimizerSettings,
    avoid: Tensor | None,
    seed: int | None = None,
) -> Tensor:
    from acquisitions.coordinate import optimize_coordinate

    return optimize_coordinate(acqf, domain, q, s, avoid=avoid, seed=seed)


def _opt_continuous(
    acqf: AcquisitionFunction, domain: Domain, q: int, s: OptimizerSettings, avoid: Tensor | None
) -> Tensor:
    from acquisitions.precondition import (
        FiniteGradAcquisition,
        ScaledAcquisition,
        input_scales,
    )

    # one-shot KG optimizes an augmented batch that only optimize_acqf builds
    single = q == 1 and not isinstance(acqf, OneShotAcquisitionFunction)
    scales = input_scales(acqf, domain.dim) if single else None
    target, bounds = (FiniteGradAcquisition(acqf) if single else acqf), domain.bounds
    if scales is not None:
        target = ScaledAcquisition(target, scales)
        bounds = target.scale_bounds(bounds)
    if single and s.screen_iterations is not None and s.screen_iterations < s.maxiter:
        X = _screened_multistart(target, bounds, s)
    else:
        X, _ = optimize_acqf(
            target,
            bounds=bounds,
            q=q,
            num_restarts=s.num_restarts,
            raw_samples=s.raw_samples,
            options={"maxiter": s.maxiter},
            sequential=q > 1,
            # botorch re-runs every restart from new starting points when any restart
            # warns, and keeps only the second run; the MC log-EI surface ends many
            # line searches "ABNORMAL", so the retry doubled the ask time for nothing
            retry_on_optimization_warning=False,
        )
    return target.unscale(X) if scales is not None else X


def _screened_multistart(
    acqf: AcquisitionFunction, bounds: Tensor, s: OptimizerSettings
) -> Tensor:
    """Multi-start L-BFGS-B that drops all but the best restarts after a few iterations.

    Starting points as ``optimize_acqf`` picks them (the best of ``raw_samples``
    quasi-random points, Boltzmann-sampled); every restart runs
    ``screen_iterations`` iterations, the best ``survivors`` continue (from
    where they stopped) up to ``maxiter``.

    Returns:
        The best point, ``1 x d``.
    """
    from botorch.generation.gen import gen_candidates_scipy
    from botorch.optim.initializers import gen_batch_initial_conditions

    starts = gen_batch_initial_conditions(
        acqf, bounds, q=1, num_restarts=s.num_restarts, raw_samples=s.raw_samples
    )
    lower, upper = bounds
    # botorch re-raises its "optimization failed" warnings with an "always" filter;
    # record them (as optimize_acqf does) so an ABNORMAL line search stays quiet
    with warnings.catch_warnings(record=True):
        X, values = gen_candidates_scipy(
            starts,
            acqf,
            lower_bounds=lower,
            upper_bounds=upper,
            options={"maxiter": s.screen_iterations},
        )
        best = values.topk(min(s.survivors, values.numel())).indices
        X, values = gen_candidates_scipy(
            X[best],
            acqf,
            lower_bounds=lower,
            upper_bounds=upper,
            options={"maxiter": s.maxiter - s.screen_iterations},
        )
    return X[values.argmax()]


def _opt_mixed(
    acqf: AcquisitionFunction, domain: Domain, q: int, s: OptimizerSettings, avoid: Tensor | None
) -> Tensor:
    cols = _discrete_cols(domain)
    dims = sorted(cols)
    combos = list(itertools.product(*(cols[i] for i in dims)))

    def pick(exclude: Tensor | None) -> Tensor:
        kept = combos
        if exclude is not None:
            taken = exclude[:, dims]
            kept = [
                c for c in combos if not _matches(taken.new_tensor([c]), taken).item()
            ] or combos
        X, _ = optimize_acqf_mixed(
            acqf,
            bounds=domain.bounds,
            q=1,
            num_restarts=s.num_restarts,
            raw_samples=s.raw_samples,
            fixed_features_list=[dict(zip(dims, c, strict=True)) for c in kept],
            options={"maxiter": s.maxiter},
        )
        return X

    return greedy_batch(acqf, domain, q, pick)


def _opt_alternating(
    acqf: AcquisitionFunction, domain: Domain, q: int, s: OptimizerSettings, avoid: Tensor | None
) -> Tensor:
    dims = sorted(_discrete_cols(domain))

    def pick(exclude: Tensor | None) -> Tensor:
        X, _ = optimize_acqf_mixed_alternating(
            acqf if exclude is None else _Excluding(acqf, dims, exclude),
            bounds=domain.bounds,
            discrete_dims=domain.discrete or None,
            cat_dims=domain.categorical or None,
            q=1,
            num_restarts=s.num_restarts,
            raw_samples=s.raw_samples,
            options={"maxiter_continuous": s.maxiter},
        )
        return X

    return greedy_batch(acqf, domain, q, pick)


STRATEGIES: dict[str, Callable[..., Tensor]] = {
    "candidates": _opt_finite,
    "enumerate": _opt_finite,
    "continuous": _opt_continuous,
    "mixed": _opt_mixed,
    "alternating": _opt_alternating,
    "coordinate": _opt_coordinate,
}
#: Strategies that take the proposal's seed (the others draw from the forked global stream).
_SEEDED = ("candidates", "enumerate", "coordinate")


def optimize_acquisition(
    acqf: AcquisitionFunction,
    domain: Domain,
    q: int = 1,
    settings: OptimizerSettings | None = None,
    avoid: Tensor | None = None,
    seed: int | None = None,
) -> Tensor:
    """Maximize ``acqf`` over ``domain``.

    Args:
        acqf: The acquisition function (``batch x q x d -> batch``).
        domain: The encoded domain.
        q: Number of points to propose jointly.
        settings: Optimizer budget (defaults: ``OptimizerSettings()``).
        avoid: ``k x d`` points not to propose on finite domains (evaluated or
            pending), unless ``settings.allow_repeats`` or fewer than ``q``
            points would remain.
        seed: Seed of candidate subsets and of the coordinate search's
            starting points (default: the global torch stream).

    Returns:
        ``q x d`` proposed points, inside ``domain``; distinct on a domain with
        discrete columns while it has ``q`` points (module doc).
    """
    settings = settings or OptimizerSettings()
    strategy = choose_strategy(domain)
    with warnings.catch_warnings():
        # botorch's "optimization failed to converge" warnings are expected with
        # flat acquisitions; the best restart is used either way.
        warnings.simplefilter("ignore")
        warnings.simplefilter("default", CandidatesExhaustedWarning)
        extra = {"seed": seed} if strategy in _SEEDED else {}
        X = STRATEGIES[strategy](acqf, domain, q, settings, avoid, **extra)
    X = X.detach().reshape(q, domain.dim)
    if not torch.isfinite(X).all():
        raise RuntimeError(f"acquisition optimizer ({strategy}) returned non-finite points")
    return X.clamp(domain.bounds[0], domain.bounds[1])
