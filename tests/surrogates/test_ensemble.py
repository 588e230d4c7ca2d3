"""Deep ensemble surrogate (surrogates/ensemble.py)."""

from __future__ import annotations

import math

import pytest
import torch

from surrogates import Column, FitError, get_surrogate
from surrogates.ensemble import EnsembleSurrogate
from surrogates.nn import SampledNetworkModel

D = torch.float64
#: Small budget for the contract-style tests (about 0.2 s a fit on one core).
FAST = {"epochs": 200, "lr": 0.02}


def _cols(d: int) -> list[Column]:
    return [Column(f"x{i}", "continuous") for i in range(d)]


def _sine(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.rand(n, 1, generator=torch.Generator().manual_seed(seed), dtype=D)
    return X, 50.0 * torch.sin(2 * math.pi * X) + 300.0


def _toy5(X: torch.Tensor) -> torch.Tensor:
    y = torch.sin(2 * math.pi * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, 2:].sum(-1)
    return (50.0 * y + 300.0).unsqueeze(-1)


def test_registry_and_flags():
    s = get_surrogate("ensemble", members=3)
    assert isinstance(s, EnsembleSurrogate) and s.members == 3
    assert EnsembleSurrogate.is_ensemble and EnsembleSurrogate.includes_observation_noise


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"members": 0}, "members"),
        ({"members": 2.5}, "members"),
        ({"widths": "64"}, "widths"),
        ({"widths": [8, 0]}, "widths"),
        ({"activation": "gelu"}, "activation"),
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"anchored": "yes"}, "anchored"),
        ({"resampling": "jackknife"}, "resampling"),
        ({"train_dtype": "float16"}, "train_dtype"),
        ({"min_noise": 0}, "min_noise"),
        ({"threads": 0}, "threads"),
    ],
)
def test_option_validation_names_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EnsembleSurrogate(**kwargs)


def test_fold_weights_hold_out_every_point_once():
    s = EnsembleSurrogate(members=4)
    w = s._member_weights(10, torch.Generator().manual_seed(0))
    assert w.shape == (4, 10)
    assert ((w == 0).sum(0) == 1).all()  # each point held out by exactly one member
    assert sorted((w == 0).sum(1).tolist()) == [2, 2, 3, 3]
    few = s._member_weights(3, torch.Generator().manual_seed(0))  # 3 folds for 4 members
    assert ((few == 0).sum(0) >= 1).all() and (few.sum(1) == 2).all()
    assert (s._member_weights(2, torch.Generator()) == 1).all()  # too few points for folds
    boot = EnsembleSurrogate(members=4, resampling="bootstrap")
    wb = boot._member_weights(10, torch.Generator().manual_seed(0))
    assert (wb.sum(1) == 10).all() and wb.dtype == D


def test_fit_accuracy_scale_and_shapes():
    X, Y = _sine(30, 0)
    s = EnsembleSurrogate()
    model = s.fit(X, Y, _cols(1), seed=0)
    assert isinstance(model, SampledNetworkModel) and model.num_members == 8
    Xt = torch.linspace(0.05, 0.95, 50, dtype=D).unsqueeze(-1)
    post = model.posterior(Xt)
    truth = 50.0 * torch.sin(2 * math.pi * Xt) + 300.0
    rmse = ((post.mean - truth) ** 2).mean().sqrt().item()
    assert rmse < 5.0  # 10 % of the outcomes' amplitude
    assert post.mean.dtype == D and post.variance.shape == (50, 1)
    assert model.posterior(Xt.view(5, 10, 1)).mean.shape == (5, 10, 1)
    assert set(s.last_info) == {"train_loss", "cv_mse", "noise_var"}
    assert s.last_state is None and s.last_refit


def test_reproducible_given_seed():
    X, Y = _sine(12, 1)
    a = EnsembleSurrogate(**FAST).fit(X, Y, _cols(1), seed=3)
    b = EnsembleSurrogate(**FAST).fit(X, Y, _cols(1), seed=3)
    c = EnsembleSurrogate(**FAST).fit(X, Y, _cols(1), seed=4)
    assert torch.equal(a.theta, b.theta) and torch.equal(a.noise_var, b.noise_var)
    assert not torch.equal(a.theta, c.theta)


def test_noise_is_the_cross_validated_error_minus_the_spread():
    X, Y = _sine(20, 2)
    s = EnsembleSurrogate(**FAST)
    model = s.fit(X, Y, _cols(1), seed=0)
    info = s.last_info
    assert info["cv_mse"] > info["noise_var"] > 0
    sd2 = float(model.y_std) ** 2
    torch.testing.assert_close(
        model.noise_var, torch.full((8,), info["noise_var"], dtype=D), rtol=1e-12, atol=0
    )
    Xt = torch.rand(7, 1, dtype=D)
    extra = model.posterior(Xt, observation_noise=True).variance - model.posterior(Xt).variance
    torch.testing.assert_close(extra, torch.full((7, 1), info["noise_var"] * sd2, dtype=D))


def test_full_resampling_uses_training_residuals():
    X, Y = _sine(15, 3)
    s = EnsembleSurrogate(resampling="full", **FAST)
    s.fit(X, Y, _cols(1), seed=0)
    assert s.last_info["noise_var"] == pytest.approx(max(1e-6, s.last_info["cv_mse"]))


def test_edge_cases_do_not_crash():
    s = EnsembleSurrogate(members=3, **FAST)
    Xt = torch.rand(4, 2, dtype=D)
    for n in (1, 2, 3):
        X = torch.rand(n, 2, generator=torch.Generator().manual_seed(n), dtype=D)
        post = s.fit(X, X.sum(-1, keepdim=True), _cols(2), seed=0).posterior(Xt)
        assert torch.isfinite(post.mean).all() and torch.isfinite(post.variance).all()
    X = torch.rand(6, 2, dtype=D)
    const = s.fit(X, torch.full((6, 1), 7.0, dtype=D), _cols(2), seed=0).posterior(Xt)
    torch.testing.assert_close(const.mean, torch.full((4, 1), 7.0, dtype=D), atol=0.05, rtol=0)
    dup = torch.cat([X, X])
    post = s.fit(dup, dup.sum(-1, keepdim=True), _cols(2), seed=0).posterior(Xt)
    assert torch.isfinite(post.variance).all()
    huge = s.fit(X, 1e9 * X[:, :1] + 1e12, _cols(2), seed=0).posterior(X)
    assert (huge.mean - (1e9 * X[:, :1] + 1e12)).abs().max() < 3e8


def test_categorical_columns_are_one_hot():
    cols = [Column("x", "continuous"), Column("c", "categorical", n_categories=3)]
    g = torch.Generator().manual_seed(0)
    X = torch.cat(
        [torch.rand(24, 1, generator=g, dtype=D), torch.randint(0, 3, (24, 1), generator=g)],
        dim=-1,
    ).to(D)
    Y = X[:, :1] + 10.0 * (X[:, 1:] == 2)
    model = EnsembleSurrogate(**FAST).fit(X, Y, cols, seed=0)
    mean = model.posterior(torch.tensor([[0.5, 2.0], [0.5, 0.0]], dtype=D)).mean
    assert mean[0, 0] - mean[1, 0] == pytest.approx(10.0, abs=1.5)


def test_fit_errors():
    s = EnsembleSurrogate(**FAST)
    with pytest.raises(FitError, match="n=0"):
        s.fit(torch.zeros(0, 2, dtype=D), torch.zeros(0, 1, dtype=D), _cols(2), seed=0)
    with pytest.raises(FitError, match="finite"):
        s.fit(torch.rand(3, 2, dtype=D), torch.tensor([[1.0], [math.nan], [0.0]]), _cols(2), 0)
    with pytest.raises(FitError, match="text"):
        s.fit(torch.zeros(3, 1, dtype=D), torch.rand(3, 1, dtype=D), [Column("t", "text")], 0)
    with pytest.raises(FitError, match="expected X"):
        s.fit(torch.rand(3, 2, dtype=D), torch.rand(3, 1, dtype=D), _cols(3), seed=0)


def test_divergence_retries_then_fails(monkeypatch):
    s = EnsembleSurrogate(**FAST)
    X, Y = _sine(8, 0)
    calls = []

    def diverging(spec, Z, y, w, gen, lr):
        calls.append(lr)
        return torch.zeros(8, spec.num_params, dtype=D), math.nan

    monkeypatch.setattr(s, "_train", diverging)
    with pytest.warns(RuntimeWarning, match="diverged"), pytest.raises(FitError):
        s.fit(X, Y, _cols(1), seed=0)
    assert calls == [0.02, pytest.approx(0.002)]


def test_optimizer_loop_with_pending_points(make_optimizer):
    from bayesopt import Float

    opt = make_optimizer(
        {"x": Float(0, 1), "y": Float(0, 1)},
        surrogate="ensemble",
        surrogate_options={"members": 4, **FAST},
        seed=0,
    )
    for _ in range(6):
        t = opt.ask()
        opt.tell(t, -((t.params["x"] - 0.3) ** 2) - (t.params["y"] - 0.7) ** 2)
    batch = opt.ask_batch(2)
    assert len({tuple(t.params.values()) for t in batch}) == 2
    assert all(t.attrs.get("source") == "model" for t in batch)
    assert all(t.attrs.get("surrogate") == "ensemble" for t in batch)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("d", "fn"), [(1, lambda X: 50 * torch.sin(2 * math.pi * X) + 300), (5, _toy5)]
)
def test_calibration_on_toy_problems(d, fn):
    """The issue-3 criterion: 90 % intervals cover 80-98 %, NLL beats a constant."""
    cover, nll, nll0 = [], [], []
    for seed in range(5):
        g = torch.Generator().manual_seed(100 + seed)
        X, Xt = torch.rand(30, d, generator=g, dtype=D), torch.rand(200, d, generator=g, dtype=D)
        Y, Yt = fn(X).reshape(-1, 1), fn(Xt).reshape(-1)
        post = (
            EnsembleSurrogate()
            .fit(X, Y, _cols(d), seed=seed)
            .posterior(Xt, observation_noise=True)
        )
        mu, var = post.mean.reshape(-1), post.variance.reshape(-1)
        cover.append((Yt - mu).abs() <= 1.645 * var.sqrt())
        nll.append(0.5 * (math.log(2 * math.pi) + var.log() + (Yt - mu) ** 2 / var))
        m0, v0 = Y.mean(), Y.var()
        nll0.append(0.5 * (math.log(2 * math.pi) + v0.log() + (Yt - m0) ** 2 / v0))
    coverage = torch.cat(cover).double().mean().item()
    assert 0.80 <= coverage <= 0.98
    assert torch.cat(nll).mean() < torch.cat(nll0).mean()
