"""The surrogate contract, checked on every registered surrogate.

Each test runs once per name of ``surrogates.available_surrogates()``, with the
small budgets of ``FAST_OPTIONS`` (tests/surrogates/surrogate_tables.py). A surrogate
whose module is missing fails here rather than being skipped.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import pytest
import torch
from botorch.models.model import Model
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.sampling.get_sampler import get_sampler
from surrogate_tables import SURROGATES, WARM_STARTS, continuous_columns, make, toy_data

from acquisitions import get_acquisition
from acquisitions.base import AcquisitionContext, Domain
from surrogates import Column, Surrogate

D = 3
COLS = continuous_columns(D)


def _fit(surrogate: Surrogate, X, Y, columns, seed=0, global_seed=12345, **kwargs) -> Model:
    """Fit inside a forked RNG whose global state is set to ``global_seed``.

    The contract says a fit depends on ``seed`` only, so the global state the
    caller happens to leave must not matter (tests vary it on purpose).
    """
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # degraded fits may warn
        torch.manual_seed(global_seed)
        return surrogate.fit(X, Y, columns, seed, **kwargs)


@dataclass
class Fitted:
    name: str
    surrogate: Surrogate
    model: Model
    X: torch.Tensor
    Y: torch.Tensor


@pytest.fixture(scope="module", params=SURROGATES)
def fitted(request) -> Fitted:
    """Each registered surrogate fitted once on 16 points of a smooth 3-D function."""
    X, Y = toy_data(16, D, seed=0)
    surrogate = make(request.param)
    return Fitted(request.param, surrogate, _fit(surrogate, X, Y, COLS), X, Y)


def _points(*shape: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=torch.float64)


def _context(X, Y, q=1, X_pending=None, seed=0) -> AcquisitionContext:
    bounds = torch.stack([torch.zeros(X.shape[-1]), torch.ones(X.shape[-1])]).to(X)
    return AcquisitionContext(
        X_baseline=X,
        Y_baseline=Y,
        X_pending=X_pending,
        best_f=float(Y.max()),
        domain=Domain(bounds=bounds),
        seed=seed,
        iteration=X.shape[0],
        q=q,
    )


# --------------------------------------------------------------------------- model and flags


def test_fit_returns_a_botorch_model_with_truthful_flags(fitted):
    assert isinstance(fitted.model, Model)
    assert fitted.model.num_outputs == 1
    post = fitted.model.posterior(_points(5, D))
    assert post.mean.device.type == "cpu"  # the default device
    # is_ensemble says whether the posterior is sample based (read on the instance:
    # a surrogate that delegates, like auto, may set it per fit).
    assert isinstance(post, EnsemblePosterior) == bool(fitted.surrogate.is_ensemble)
    noisy = fitted.model.posterior(_points(5, D), observation_noise=True).variance
    if fitted.surrogate.includes_observation_noise:
        assert torch.all(noisy >= post.variance * (1 - 1e-9))
        assert torch.any(noisy > post.variance), "observation_noise=True adds nothing"
    else:
        torch.testing.assert_close(noisy, post.variance)


@pytest.mark.parametrize("shape", [(5, D), (4, 2, D)], ids=["n_x_d", "b_x_q_x_d"])
def test_posterior_shapes(fitted, shape):
    X = _points(*shape)
    for noise in (False, True):
        post = fitted.model.posterior(X, observation_noise=noise)
        assert post.mean.shape == (*shape[:-1], 1)
        assert post.variance.shape == (*shape[:-1], 1)
        assert post.mean.dtype == torch.float64
        assert torch.isfinite(post.mean).all() and torch.isfinite(post.variance).all()
        assert (post.variance >= 0).all()


@pytest.mark.parametrize("shape", [(5, D), (4, 2, D)], ids=["n_x_d", "b_x_q_x_d"])
def test_rsample_shapes_and_a_seeded_sampler_is_deterministic(fitted, shape):
    post = fitted.model.posterior(_points(*shape))
    sampler = get_sampler(post, torch.Size([8]), seed=0)
    samples = sampler(post)
    assert samples.shape == (8, *shape[:-1], 1)
    assert torch.isfinite(samples).all()
    torch.testing.assert_close(sampler(post), samples, rtol=0, atol=0)
    assert post.rsample(torch.Size([3])).shape == (3, *shape[:-1], 1)


def test_posterior_mean_follows_the_training_data(fitted):
    mean = fitted.model.posterior(fitted.X).mean.detach()
    y = fitted.Y
    rmse = float(((mean - y) ** 2).mean().sqrt())
    corr = float(torch.corrcoef(torch.cat([mean, y], -1).T)[0, 1])
    assert rmse < 0.5 * float(y.std()), (rmse, float(y.std()))
    assert corr > 0.9, corr


# --------------------------------------------------------------------------- acquisition


def test_qlognei_gradients_are_finite(fitted):
    acq = get_acquisition("qlognei")
    for q, pending in ((1, None), (2, _points(2, D, seed=7))):
        acqf = acq.build(fitted.model, _context(fitted.X, fitted.Y, q=q, X_pending=pending))
        X = _points(4, q, D, seed=3).requires_grad_(True)
        value = acqf(X)
        assert value.shape == (4,)
        assert torch.isfinite(value).all(), value
        value.sum().backward()
        assert X.grad is not None and torch.isfinite(X.grad).all(), X.grad
        assert X.grad.abs().sum() > 0, "qLogNEI has no gradient through the posterior"
        # Deterministic: the same inputs give the same value (seeded samplers).
        torch.testing.assert_close(acqf(X.detach()), value.detach())


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_and_data_give_the_same_posterior(fitted):
    X_test = _points(6, D)
    again = _fit(make(fitted.name), fitted.X, fitted.Y, COLS, seed=0, global_seed=999)
    with torch.no_grad():
        a = fitted.model.posterior(X_test)
        b = again.posterior(X_test)
        torch.testing.assert_close(b.mean, a.mean, rtol=0, atol=0)
        torch.testing.assert_close(b.variance, a.variance, rtol=0, atol=0)


# --------------------------------------------------------------------------- scale of Y


@pytest.mark.parametrize("scale,shift", [(1000.0, 5.0), (1e-3, 1e4)], ids=["x1000", "offset"])
def test_posterior_is_on_the_scale_of_y(fitted, scale, shift):
    """``Y * scale + shift`` gives ``mean * scale + shift`` and ``sd * scale``.

    Up to fitting noise: a point may differ by 2% of the outcomes' spread plus
    1.5 posterior standard deviations (sampled posteriors from another chain
    differ by Monte Carlo error), and the mean sd by 25%. A surrogate that does
    not standardize, or forgets to undo it, is off by orders of magnitude.
    """
    X_test = _points(20, D)
    scaled = _fit(make(fitted.name), fitted.X, fitted.Y * scale + shift, COLS, seed=0)
    with torch.no_grad():
        base = fitted.model.posterior(X_test)
        post = scaled.posterior(X_test)
        sd = scale * base.variance.sqrt()
        err = (post.mean - (scale * base.mean + shift)).abs()
        tol = 0.02 * scale * float(fitted.Y.std()) + 1.5 * sd
        assert torch.all(err <= tol), (err / tol).max()
        ratio = float(post.variance.sqrt().mean() / sd.mean())
        assert 0.75 < ratio < 1.33, ratio


# --------------------------------------------------------------------------- mixed spaces


@pytest.mark.parametrize("name", SURROGATES)
def test_mixed_space_with_a_categorical_column(name):
    """Codes 0, 1, 2 in the middle column; the outcome rises by 60 per category."""
    g = torch.Generator().manual_seed(4)
    n = 24
    X = torch.rand(n, 3, generator=g, dtype=torch.float64)
    X[:, 1] = torch.arange(n, dtype=torch.float64) % 3
    Y = (20 * torch.sin(2 * math.pi * X[:, 0]) + 10 * X[:, 2] + 60 * X[:, 1]).unsqueeze(-1)
    cols = [
        Column("a", "continuous"),
        Column("c", "categorical", n_categories=3),
        Column("b", "continuous"),
    ]
    model = _fit(make(name), X, Y, cols)
    test = _points(10, 3, seed=5)
    means = []
    with torch.no_grad():
        for code in range(3):
            test[:, 1] = code
            post = model.posterior(test)
            assert post.mean.shape == (10, 1)
            assert torch.isfinite(post.mean).all() and torch.isfinite(post.variance).all()
            means.append(float(post.mean.mean()))
    assert means[0] < means[1] < means[2], means
    acqf = get_acquisition("qlognei").build(model, _context(X, Y))
    X_c = test[:4].unsqueeze(1).clone().requires_grad_(True)
    acqf(X_c).sum().backward()
    assert torch.isfinite(X_c.grad).all()


# --------------------------------------------------------------------------- degenerate data


def _degenerate(case: str) -> tuple[torch.Tensor, torch.Tensor]:
    X, Y = toy_data(10, D, seed=2)
    if case == "constant_y":
        return X, torch.full_like(Y, 7.0)
    if case == "duplicate_x":
        X = torch.cat([X[:5], X[:5]])  # every point twice, different values at each pair
        return X, torch.cat([Y[:5], Y[:5] + 1.0])
    if case == "n2":
        return X[:2], Y[:2]
    return X[:3], Y[:3]


@pytest.mark.parametrize("case", ["constant_y", "duplicate_x", "n2", "n3"])
@pytest.mark.parametrize("name", SURROGATES)
def test_degenerate_data_do_not_crash(name, case):
    X, Y = _degenerate(case)
    model = _fit(make(name), X, Y, COLS)
    with torch.no_grad():
        post = model.posterior(_points(5, D), observation_noise=True)
    assert torch.isfinite(post.mean).all() and torch.isfinite(post.variance).all()
    if case == "constant_y":
        assert (post.mean - 7.0).abs().max() < 1.0, post.mean
    else:  # within a generous band around the data
        lo, hi = float(Y.min()), float(Y.max())
        width = hi - lo
        assert lo - 3 * width < float(post.mean.min()) <= float(post.mean.max()) < hi + 3 * width


# --------------------------------------------------------------------------- warm starts, device


def _predict(model, X):
    with torch.no_grad():
        post = model.posterior(X)
    return post.mean, post.variance


@pytest.mark.parametrize("name", SURROGATES)
def test_last_state_is_small_json_and_warm_starts(name):
    assert name in WARM_STARTS, (
        f"surrogate {name!r}: declare what it does with init/refit in "
        "tests/surrogates/surrogate_tables.py WARM_STARTS"
    )
    kind = WARM_STARTS[name]
    X, Y = toy_data(14, D, seed=6)
    surrogate = make(name)
    _fit(surrogate, X[:10], Y[:10], COLS)
    state = surrogate.last_state
    if kind is None:  # stateless, as declared: init and refit change nothing
        assert state is None
    else:
        assert isinstance(state, dict) and state, f"{name} keeps no state"
    text = json.dumps(state)  # stored with every trial as JSON
    assert len(text) < 16_000, f"last_state of {name} is {len(text)} characters of JSON"
    init = json.loads(text)
    T = _points(4, D)
    for refit in (True, False):
        fresh = make(name)
        model = _fit(fresh, X, Y, COLS, seed=1, init=init, refit=refit)
        assert isinstance(fresh.last_refit, bool)
        mean, var = _predict(model, T)
        assert torch.isfinite(mean).all() and torch.isfinite(var).all()
        if kind == "reuses":
            assert fresh.last_refit is refit
        else:
            assert fresh.last_refit is True

    if kind == "reuses":
        # refit=False uses the state it is given: handed the state of a fit on (X, Y), it
        # predicts what that fit predicts, and a state from other data predicts otherwise
        full = make(name)
        reference = _fit(full, X, Y, COLS, seed=2)
        own = json.loads(json.dumps(full.last_state))
        reused = make(name)
        model = _fit(reused, X, Y, COLS, seed=3, init=own, refit=False)
        assert reused.last_refit is False
        for got, want in zip(_predict(model, T), _predict(reference, T), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)
        other = _fit(make(name), X, Y, COLS, seed=3, init=init, refit=False)
        assert not torch.allclose(_predict(other, T)[0], _predict(reference, T)[0], rtol=1e-6)
    elif kind == "initializes":
        # every fit refits, starting from the state: with the same seed and data, a fit
        # from the state differs from a fit without it
        cold = _fit(make(name), X, Y, COLS, seed=1)
        warm = _fit(make(name), X, Y, COLS, seed=1, init=init)
        assert not torch.equal(_predict(warm, T)[0], _predict(cold, T)[0])
    else:
        # stateless: the same seed gives the same model with or without init
        cold = _fit(make(name), X, Y, COLS, seed=1)
        warm = _fit(make(name), X, Y, COLS, seed=1, init={"anything": 1.0}, refit=False)
        assert torch.equal(_predict(warm, T)[0], _predict(cold, T)[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", SURROGATES)
def test_cuda_device_option_is_honoured(name):
    X, Y = toy_data(12, D, seed=8)
    model = _fit(make(name, device="cuda"), X.cuda(), Y.cuda(), COLS)
    post = model.posterior(_points(3, D).cuda())
    assert post.mean.device.type == "cuda" and post.mean.dtype == torch.float64
