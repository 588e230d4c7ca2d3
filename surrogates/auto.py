"""Automatic surrogate choice by cross-validated predictive likelihood.

The best surrogate depends on the problem (Li, Rudner & Wilson, 2024): GPs on
smooth low-dimensional functions, infinite-width BNNs in high dimensions, deep
kernels or ensembles where the function is non-stationary. ``auto`` makes the
choice on the data seen so far: each candidate is fitted on ``k - 1`` folds
and scored by the Gaussian log density of the held-out fold
(``posterior(X, observation_noise=True)``: its mean and variance). The
choice in force (at first the first candidate, ``gp`` by default) is kept
unless another candidate predicts most of the held-out points better: a
one-sided sign test on the paired per-point log densities at level
``alpha`` (``sign_test_choice``). Means of held-out log densities are the
wrong summary here: an exact GP on a few dozen points predicts most points
well and a few with overconfidence (-10 to -700 nats per point on Branin and
Hartmann-6), so the mean picks whichever model is never badly wrong, not
the one that predicts best where it matters. With 3 folds and "better mean
by one standard error", ``auto`` left the GP for ``ibnn`` or ``ensemble`` in
2 of 5 Branin runs at 15 points and lost ten proposals each time. The
chosen surrogate is then fitted on all the data and its model is returned.

The choice is refreshed every ``refresh_every`` new observations and kept in
between (it travels in ``last_state`` with every trial, so several workers and
a resumed study make the same choice). The trial attribute
``surrogate_used`` names the surrogate behind each proposal; the stored state
(trial attribute ``model_state``) holds the last refresh's mean held-out log
densities (``scores``) and fractions of points won against the choice in
force before it (``wins``).

Cost bound: a refresh fits every candidate ``folds`` times on subsets, so one
ask that refreshes costs at most ``folds + 1`` times the sum of the
candidates' fit times; other asks cost one fit of the chosen surrogate.
Expensive candidates (``hmc_bnn``) take part only when listed in
``candidates``. Below ``min_points`` observations there is too little data
to cross-validate, and the first candidate is used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from botorch.models.model import Model
from torch import Tensor

from surrogates.base import Column, FitError, Surrogate, available_surrogates, get_surrogate

__all__ = [
    "AutoSurrogate",
    "held_out_log_density",
    "sign_test_choice",
    "sign_test_p_value",
    "pointwise_log_density",
]

DEFAULT_CANDIDATES = ("gp", "ibnn", "dkl", "ensemble")


def pointwise_log_density(model: Model, X: Tensor, Y: Tensor) -> Tensor:
    """Gaussian log density of each ``Y`` (``m x 1``) under ``model``'s predictive at ``X``.

    Uses the predictive mean and variance with observation noise (a Gaussian
    approximation for sample-based posteriors); non-finite values become ``-inf``.

    Returns:
        ``m`` log densities.
    """
    with torch.no_grad():
        post = model.posterior(X, observation_noise=True)
        mean = post.mean.reshape(-1)
        y = Y.reshape(-1).to(mean)
        floor = 1e-12 * float(y.abs().max())  # a product overflows to inf, ``**`` raises
        var = post.variance.reshape(-1).clamp_min(floor * floor + 1e-300)
        lpd = -0.5 * (torch.log(2 * math.pi * var) + (y - mean) ** 2 / var)
    return torch.where(torch.isfinite(lpd), lpd, torch.full_like(lpd, float("-inf")))


def held_out_log_density(model: Model, X: Tensor, Y: Tensor) -> float:
    """Mean of ``pointwise_log_density`` (``-inf`` if any point is not finite)."""
    return float(pointwise_log_density(model, X, Y).mean())


def sign_test_p_value(wins: int, m: int) -> float:
    """One-sided sign test: ``P(X >= wins)`` for ``X ~ Binomial(m, 1/2)``."""
    if m <= 0:
        return 1.0
    return sum(math.comb(m, k) for k in range(max(wins, 0), m + 1)) / 2.0**m


def sign_test_choice(
    pointwise: Mapping[str, Tensor], incumbent: str, alpha: float = 0.05
) -> tuple[str, dict[str, float]]:
    """The incumbent unless another candidate predicts most held-out points better.

    Each candidate is compared with ``incumbent`` point by point: it wins a
    point when its held-out log density there is higher (ties and failed
    fits lose). A candidate qualifies when a one-sided sign test rejects
    "wins at most half the points" at level ``alpha``; the qualifier with
    the most wins is chosen. Counting wins, rather than averaging the
    densities, keeps a few points that one model predicts with
    overconfidence (a GP's typical failure on a small sample, at -10 to
    -700 nats) from deciding the choice. If the incumbent failed on every
    point, the candidate with the best mean density wins.

    Args:
        pointwise: candidate -> ``n`` held-out log densities (same points, same order).
        incumbent: The choice in force (the first candidate before any choice).
        alpha: Level of the sign test.

    Returns:
        The choice, and each candidate's fraction of points won against
        ``incumbent`` (``incumbent`` itself: 0.5).
    """
    base = pointwise[incumbent]
    if not bool(torch.isfinite(base).any()):
        means = {k: float(v.mean()) for k, v in pointwise.items()}
        finite = [k for k in means if math.isfinite(means[k])]
        best = max(finite, key=means.__getitem__) if finite else incumbent
        return best, {k: (0.5 if k == incumbent else 1.0) for k in pointwise}
    m = int(base.numel())
    wins = {
        name: int((torch.nan_to_num(values - base, nan=0.0) > 0).sum())
        for name, values in pointwise.items()
        if name != incumbent
    }
    fractions = {incumbent: 0.5, **{k: (v / m if m else 0.0) for k, v in wins.items()}}
    qualified = [k for k, w in wins.items() if sign_test_p_value(w, m) <= alpha]
    if qualified:
        return max(qualified, key=wins.__getitem__), fractions
    return incumbent, fractions


class AutoSurrogate(Surrogate):
    """Picks among registered surrogates by ``folds``-fold held-out log density.

    Args:
        device: Torch device handed to every candidate.
        candidates: Registry names to choose from (the first is the default
            below ``min_points``). ``hmc_bnn`` is left out by default: its fits
            take tens of seconds.
        candidate_options: Constructor options per candidate name.
        folds: Number of cross-validation folds (at least 2).
        refresh_every: Observations added before the choice is made again.
        min_points: Fewest observations to cross-validate on.
        alpha: Level of the sign test that a candidate must pass to replace
            the current choice (``sign_test_choice``).
    """

    name = "auto"

    def __init__(
        self,
        *,
        device: str = "cpu",
        candidates: Sequence[str] = DEFAULT_CANDIDATES,
        candidate_options: Mapping[str, Mapping[str, Any]] | None = None,
        folds: int = 5,
        refresh_every: int = 10,
        min_points: int = 6,
        alpha: float = 0.05,
    ) -> None:
        super().__init__(device=device)
        if isinstance(candidates, str) or not list(candidates):
            raise ValueError(
                f"candidates: expected a non-empty list of names, got {candidates!r}."
            )
        unknown = [c for c in candidates if c not in available_surrogates() or c == "auto"]
        if unknown:
            raise ValueError(
                f"candidates: unknown or invalid names {unknown}; choose from "
                f"{[n for n in available_surrogates() if n != 'auto']}."
            )
        options = dict(candidate_options or {})
        stray = sorted(set(options) - set(candidates))
        if stray:
            raise ValueError(f"candidate_options: {stray} are not among candidates {candidates}.")
        for arg, value, low in (
            ("folds", folds, 2),
            ("refresh_every", refresh_every, 1),
            ("min_points", min_points, 2),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{arg}: expected an integer >= {low}, got {value!r}.")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise ValueError(f"alpha: expected a number in (0, 1), got {alpha!r}.")
        self.alpha = float(alpha)
        self.candidates = list(candidates)
        self.candidate_options = {k: dict(v) for k, v in options.items()}
        self.folds = folds
        self.refresh_every = refresh_every
        self.min_points = min_points
        #: Name of the surrogate behind the last model.
        self.last_used: str | None = None
        #: Held-out scores of the last refreshed choice (name -> mean log density).
        self.last_scores: dict[str, float] | None = None
        #: Fraction of held-out points each candidate predicted better than the incumbent.
        self.last_wins: dict[str, float] | None = None
        self.last_fallback: str | None = None
        self._members: dict[str, Surrogate] = {}

    def _member(self, name: str) -> Surrogate:
        if name not in self._members:
            self._members[name] = self._new(name)
        return self._members[name]

    def _new(self, name: str) -> Surrogate:
        return get_surrogate(name, device=self.device, **self.candidate_options.get(name, {}))

    def scores(
        self, X: Tensor, Y: Tensor, columns: Sequence[Column], seed: int
    ) -> dict[str, Tensor]:
        """Held-out log density of every point under every candidate (``-inf`` where a fit failed).

        Args:
            X: ``n x d`` encoded inputs.
            Y: ``n x 1`` outcomes.
            columns: ``d`` column descriptions.
            seed: Seed of the fold assignment and of the candidates' fits.

        Returns:
            candidate -> ``n`` log densities, each point scored by the fit
            that did not see it (points in a fixed order).
        """
        n = X.shape[0]
        k = min(self.folds, n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        folds = [perm[i::k].to(X.device) for i in range(k)]
        result = {}
        for name in self.candidates:
            parts = []
            for i, test in enumerate(folds):
                train = torch.cat([f for j, f in enumerate(folds) if j != i])
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model = self._new(name).fit(X[train], Y[train], columns, seed + i)
                    parts.append(pointwise_log_density(model, X[test], Y[test]).cpu())
                except (FitError, RuntimeError, ValueError):
                    parts.append(torch.full((len(test),), float("-inf"), dtype=torch.float64))
            result[name] = torch.cat(parts)
        return result

    def fit(
        self,
        X: Tensor,
        Y: Tensor,
        columns: Sequence[Column],
        seed: int,
        init: Mapping[str, Any] | None = None,
        refit: bool = True,
    ) -> Model:
        """Choose a surrogate (or keep the stored choice) and fit it to all data.

        Args:
            X: ``n x d`` encoded inputs.
            Y: ``n x 1`` outcomes (maximization, user scale).
            columns: ``d`` column descriptions.
            seed: Seed of the cross-validation and of the fits.
            init: ``last_state`` of an earlier fit: holds the choice, the
                number of points it was made on, and the chosen surrogate's state.
            refit: Passed on to the chosen surrogate.

        Returns:
            The chosen surrogate's fitted model.

        Raises:
            FitError: the chosen surrogate and the first candidate both failed.
        """
        n = X.shape[0]
        init = dict(init or {})
        choice, chosen_at = init.get("choice"), int(init.get("chosen_at", 0))
        self.last_scores = {
            k: (float("-inf") if v is None else v) for k, v in (init.get("scores") or {}).items()
        } or None
        self.last_wins = dict(init.get("wins") or {}) or None
        if choice not in self.candidates:
            choice = None
        if n < self.min_points:
            choice, chosen_at, self.last_scores, self.last_wins = self.candidates[0], n, None, None
        elif choice is None or n - chosen_at >= self.refresh_every:
            pointwise = self.scores(X, Y, columns, seed)
            self.last_scores = {k: float(v.mean()) for k, v in pointwise.items()}
            best, self.last_wins = sign_test_choice(
                pointwise, choice or self.candidates[0], alpha=self.alpha
            )
            if best != choice:
                init.pop("state", None)  # the old choice's warm start does not apply
            choice, chosen_at = best, n
        member = self._member(choice)
        inner_init = init.get("state") if init.get("choice") == choice else None
        self.last_fallback = None
        try:
            model = member.fit(X, Y, columns, seed, init=inner_init, refit=refit)
        except FitError as exc:
            if choice == self.candidates[0]:
                raise
            self.last_fallback = f"{choice} failed to fit ({exc}); used {self.candidates[0]}"
            warnings.warn(f"auto: {self.last_fallback}", RuntimeWarning, stacklevel=2)
            choice, member = self.candidates[0], self._member(self.candidates[0])
            model = member.fit(X, Y, columns, seed)
        self.last_fallback = self.last_fallback or getattr(member, "last_fallback", None)
        self.last_used = choice
        self.last_refit = member.last_refit
        # instance attributes shadow the class defaults with the chosen surrogate's
        self.includes_observation_noise = member.includes_observation_noise
        self.is_ensemble = member.is_ensemble
        scores = self.last_scores and {
            k: (round(v, 6) if math.isfinite(v) else None) for k, v in self.last_scores.items()
        }
        wins = self.last_wins and {k: round(v, 4) for k, v in self.last_wins.items()}
        self.last_state = {
            "choice": choice,
            "chosen_at": chosen_at,
            "scores": scores,
            "wins": wins,
        }
        if member.last_state is not None:
            self.last_state["state"] = member.last_state
        return model

    def __repr__(self) -> str:
        return (
            f"AutoSurrogate(candidates={self.candidates!r}, folds={self.folds}, "
            f"alpha={self.alpha})"
        )
