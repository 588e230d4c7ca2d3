"""Coordinate search for domains with a large categorical column (a ``Text`` parameter).

A Text column's codes have no order and no neighbours: the only useful
discrete move is to score many candidates at once. From the best
``num_restarts`` of ``raw_samples`` scrambled Sobol points (discrete columns
at admissible values), each round

1. sets every discrete column in turn to its best value, with the other
   columns held: all values of an ordinal or small categorical column, and of
   a large column all values or a seeded random subset of
   ``candidate_subset`` (default ``COORDINATE_SUBSET``), drawn afresh per step;
2. runs L-BFGS-B on the continuous columns with the discrete ones fixed
   (botorch's ``optimize_acqf``, one start per restart);

until a round changes nothing or ``MAX_ROUNDS`` rounds have run. A batch of
``q`` points is built greedily, each point pending for the next; a pick that
repeats an earlier one is searched again away from the codes already in the
batch (``acquisitions.optimize.greedy_batch``). On a domain without
continuous columns the evaluated and pending points (``avoid``) are never
proposed, like the enumerated strategies.
"""

from __future__ import annotations

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf
from torch import Tensor

from acquisitions.base import Domain
from acquisitions.discretize import sobol_points

__all__ = ["COORDINATE_SUBSET", "MAX_ROUNDS", "optimize_coordinate"]

#: Values of a large categorical column scored per coordinate step, by default.
COORDINATE_SUBSET = 1024
#: Rounds of (discrete coordinate steps, continuous step) at most.
MAX_ROUNDS = 6
#: Points per acquisition call (bounds memory on large candidate sets).
BATCH = 4096


def _evaluate(acqf: AcquisitionFunction, X: Tensor) -> Tensor:
    """Acquisition values of ``n x d`` points, one point per batch (``n``)."""
    with torch.no_grad():
        return torch.cat([acqf(X[i : i + BATCH].unsqueeze(-2)) for i in range(0, len(X), BATCH)])


def _mask_tried(values: Tensor, X: Tensor, avoid: Tensor | None) -> Tensor:
    """``values`` with the rows of ``X`` that equal a row of ``avoid`` set to ``-inf``."""
    if avoid is None or avoid.numel() == 0:
        return values
    from acquisitions.optimize import _matches

    return values.masked_fill(_matches(X, avoid), float("-inf"))


def _mask_taken(values: Tensor, X: Tensor, taken: Tensor | None, cols: list[int]) -> Tensor:
    """``values``, ``-inf`` at the rows of ``X`` whose ``cols`` equal a row of ``taken``."""
    if taken is None or taken.numel() == 0:
        return values
    from acquisitions.optimize import _matches

    return values.masked_fill(_matches(X[:, cols], taken[:, cols]), float("-inf"))


def _improved(new: Tensor, old: Tensor) -> Tensor:
    return new > old + 1e-9 * (1.0 + old.abs().nan_to_num(posinf=0.0, neginf=0.0))


def _search(
    acqf: AcquisitionFunction,
    domain: Domain,
    settings: object,
    avoid: Tensor | None,
    gen: torch.Generator,
    taken: Tensor | None = None,
) -> Tensor:
    """One point (``d``) maximizing ``acqf`` by restarts of the coordinate search.

    ``taken`` (``k x d``, the batch so far): points whose discrete columns
    equal a row's discrete columns are not proposed.
    """
    cols = {**domain.discrete, **domain.categorical}
    keys = sorted(cols)
    d = domain.dim
    dtype, device = domain.bounds.dtype, domain.bounds.device
    continuous = [i for i in range(d) if i not in cols]
    if continuous:
        avoid = None  # a new continuous value makes any point new
    values = {c: torch.as_tensor(sorted(v), dtype=dtype, device=device) for c, v in cols.items()}
    subset = settings.candidate_subset or COORDINATE_SUBSET

    # starting points: the best distinct Sobol points
    X0 = torch.unique(
        sobol_points(
            domain, settings.raw_samples, int(torch.randint(2**31 - 1, (), generator=gen))
        ),
        dim=0,
    )
    v0 = _mask_taken(_mask_tried(_evaluate(acqf, X0), X0, avoid), X0, taken, keys)
    top = v0.argsort(descending=True)[: settings.num_restarts]
    cur, cur_v = X0[top].clone(), v0[top].clone()

    for _ in range(MAX_ROUNDS):
        changed = False
        for c in sorted(cols):
            V = values[c]
            if V.shape[0] > subset:
                V = V[torch.randperm(V.shape[0], generator=gen)[:subset].to(device)]
            r, k = cur.shape[0], V.shape[0]
            Xb = cur.unsqueeze(1).repeat(1, k, 1)
            Xb[:, :, c] = V
            Xb = Xb.reshape(r * k, d)
            vals = _mask_tried(_evaluate(acqf, Xb), Xb, avoid)
            vals = _mask_taken(vals, Xb, taken, keys).reshape(r, k)
            best_v, best_j = vals.max(dim=1)
            better = _improved(best_v, cur_v)
            if better.any():
                cur[better, c] = V[best_j[better]]
                cur_v[better] = best_v[better]
                changed = True
        if continuous:
            Xc, vc = optimize_acqf(
                acqf,
                bounds=domain.bounds,
                q=1,
                num_restarts=cur.shape[0],
                batch_initial_conditions=cur.unsqueeze(1),
                fixed_features={c: cur[:, c] for c in cols},
                return_best_only=False,
                options={"maxiter": settings.maxiter},
            )
            Xc = Xc.detach().reshape(cur.shape)
            vc = _mask_taken(vc.detach().reshape(-1), Xc, taken, keys)
            better = _improved(vc, cur_v)
            if better.any():
                cur[better] = Xc[better]
                cur_v[better] = vc[better]
                changed = True
        if not changed:
            break
    return cur[cur_v.argmax()]


def optimize_coordinate(
    acqf: AcquisitionFunction,
    domain: Domain,
    q: int,
    settings: object,
    avoid: Tensor | None = None,
    seed: int | None = None,
) -> Tensor:
    """Maximize ``acqf`` over ``domain`` by the coordinate search (module doc).

    Args:
        acqf: The acquisition function (``batch x q x d -> batch``).
        domain: The encoded domain.
        q: Number of points, chosen greedily (each pending for the next).
        settings: ``acquisitions.optimize.OptimizerSettings``.
        avoid: ``k x d`` evaluated and pending points, excluded on domains
            without continuous columns (unless ``settings.allow_repeats``).
        seed: Seed of the starting points and candidate subsets (default:
            the global torch stream).

    Returns:
        ``q x d`` distinct points (see ``greedy_batch``).
    """
    gen = torch.Generator()
    gen.manual_seed(int(seed) if seed is not None else int(torch.randint(2**31 - 1, ()).item()))
    if settings.allow_repeats:
        avoid = None
    from acquisitions.optimize import greedy_batch

    tried = [avoid]  # the evaluated and pending points, then each pick (fully discrete)

    def pick(exclude: Tensor | None) -> Tensor:
        return _search(acqf, domain, settings, tried[0], gen, exclude)

    def picked(x: Tensor) -> None:
        if tried[0] is not None:
            tried[0] = torch.cat([tried[0].to(x), x.unsqueeze(0)])

    return greedy_batch(acqf, domain, q, pick, on_pick=picked)
