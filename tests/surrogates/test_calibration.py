"""Calibration of every registered surrogate on seeded toy problems.

Two smooth, noise-free functions on the unit cube:

* ``forrester`` (1-D): Forrester et al. (2008), ``(6x - 2)^2 sin(12x - 4)``;
* ``friedman`` (5-D): Friedman's (1991) regression function,
  ``10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5`` -- a sine interaction,
  a quadratic and two linear terms.

For each of 5 seeds: 30 uniform training points, 200 uniform held-out points,
one fit with that seed. Pooled over the seeds (1000 held-out points per
problem), the 90% predictive interval ``mean +- 1.645 sd`` of
``posterior(X, observation_noise=True)`` must cover 80%..98% of the held-out
values, and the mean Gaussian negative log-likelihood of the held-out values
must beat the constant predictor ``N(mean, variance)`` of each seed's training
targets. Options come from ``CALIBRATION_OPTIONS``: every surrogate's
defaults. (A cheaper ``hmc_bnn`` -- 4 chains of 30 + 15 draws, tree depth 5 --
was measured: 99.5% coverage on forrester and 76% on friedman, so CI runs its
defaults, about 40 s of CPU per problem; the whole file takes about 2.5 CPU
minutes, most of it ``hmc_bnn`` and ``auto``.)
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from surrogate_tables import CALIBRATION_OPTIONS, SURROGATES, continuous_columns, make

N_TRAIN, N_TEST, SEEDS = 30, 200, (0, 1, 2, 3, 4)
Z90 = 1.6448536269514722  # standard-normal 95% quantile: a central 90% interval
COVERAGE_RANGE = (0.80, 0.98)


def forrester(X: torch.Tensor) -> torch.Tensor:
    """``n x 1`` -> ``n``: ``(6x - 2)^2 sin(12x - 4)`` on ``[0, 1]``."""
    x = X[..., 0]
    return (6 * x - 2) ** 2 * torch.sin(12 * x - 4)


def friedman(X: torch.Tensor) -> torch.Tensor:
    """``n x 5`` -> ``n``: ``10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5``."""
    x1, x2, x3, x4, x5 = X.unbind(-1)
    return 10 * torch.sin(math.pi * x1 * x2) + 20 * (x3 - 0.5) ** 2 + 10 * x4 + 5 * x5


PROBLEMS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], int]] = {
    "forrester": (forrester, 1),
    "friedman": (friedman, 5),
}


def gaussian_nll(y: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Per-point negative log density of ``y`` under ``N(mean, var)``."""
    return 0.5 * (torch.log(2 * math.pi * var) + (y - mean) ** 2 / var)


def calibration(name: str, problem: str, options: dict[str, Any]) -> dict[str, float]:
    """Pooled coverage and held-out NLL of ``name`` (with ``options``) on ``problem``.

    Returns:
        ``coverage`` (fraction of held-out values inside the 90% interval),
        ``nll`` (mean held-out Gaussian NLL), ``nll_constant`` (the same for the
        constant ``N(mean, var)`` of the training targets), ``width`` (mean
        interval width over the targets' standard deviation).
    """
    fn, d = PROBLEMS[problem]
    cols = continuous_columns(d)
    inside, nll, nll_const, width = [], [], [], []
    for seed in SEEDS:
        g = torch.Generator().manual_seed(seed)
        X = torch.rand(N_TRAIN, d, generator=g, dtype=torch.float64)
        X_test = torch.rand(N_TEST, d, generator=g, dtype=torch.float64)
        Y, y_test = fn(X).unsqueeze(-1), fn(X_test)
        surrogate = make(name, {name: options})
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            torch.manual_seed(seed)
            model = surrogate.fit(X, Y, cols, seed)
            with torch.no_grad():
                post = model.posterior(X_test, observation_noise=True)
        mean = post.mean.detach().squeeze(-1)
        var = post.variance.detach().squeeze(-1).clamp_min(1e-300)
        sd = var.sqrt()
        inside.append(((y_test - mean).abs() <= Z90 * sd).double())
        nll.append(gaussian_nll(y_test, mean, var))
        nll_const.append(gaussian_nll(y_test, Y.mean(), Y.var()))
        width.append(2 * Z90 * sd / Y.std())
    return {
        "coverage": float(torch.cat(inside).mean()),
        "nll": float(torch.cat(nll).mean()),
        "nll_constant": float(torch.cat(nll_const).mean()),
        "width": float(torch.cat(width).mean()),
    }


@functools.cache
def _cached(name: str, problem: str) -> dict[str, float]:
    return calibration(name, problem, CALIBRATION_OPTIONS.get(name, {}))


def _check(result: dict[str, float]) -> None:
    lo, hi = COVERAGE_RANGE
    assert lo <= result["coverage"] <= hi, result
    assert result["nll"] < result["nll_constant"], result


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("name", SURROGATES)
def test_90_percent_interval_coverage_and_nll(name, problem):
    _check(_cached(name, problem))


def test_the_constant_baseline_is_the_training_moments():
    y = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    nll = gaussian_nll(y, y.mean(), y.var())
    var = 7 / 3  # unbiased variance of 1, 2, 4
    expected = 0.5 * (math.log(2 * math.pi * var) + ((y - 7 / 3) ** 2) / var)
    torch.testing.assert_close(nll, expected)
