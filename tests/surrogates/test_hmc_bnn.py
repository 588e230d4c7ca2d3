import json
import math
import warnings

import pytest
import torch
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.sampling.get_sampler import get_sampler

from acquisitions import get_acquisition
from acquisitions.base import AcquisitionContext, Domain
from surrogates import Column, FitError, get_surrogate
from surrogates.hmc_bnn import HMCBNNSurrogate, WarpedNetworkModel
from surrogates.hmc_potential import LogJoint
from surrogates.nn import MLPSpec, SampledNetworkModel

#: Small budgets: 2 chains x (20 + 10) transitions of at most 7 leapfrog steps.
FAST = dict(
    widths=(16,), num_chains=2, num_warmup=20, num_samples=10, max_tree_depth=3, map_steps=100
)


def _cols(d):
    return [Column(f"x{i}", "continuous") for i in range(d)]


def _smooth(X):
    """A smooth function far from zero mean: 1-D uses x0 only."""
    y = torch.sin(2 * math.pi * X[:, 0])
    if X.shape[1] > 1:
        y = y + X[:, 1] ** 2 - 0.5 * X[:, 2:].sum(-1) + torch.cos(3 * X[:, -2] * X[:, -1])
    return (10.0 * y + 100.0).unsqueeze(-1)


def _data(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    return X, _smooth(X)


def _fit(surrogate, X, Y, seed=0, global_seed=123, quiet=True, **kwargs):
    """Fit under a global seed that must not matter; ``quiet``: ignore RuntimeWarnings
    (the short warm-ups of the test budgets often diverge)."""
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", RuntimeWarning)
        torch.manual_seed(global_seed)
        return surrogate.fit(X, Y, _cols(X.shape[1]), seed, **kwargs)


# -------------------------------------------------------------------- the log joint


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize(
    ("ard_scale", "output_scale", "noise_std"),
    [(None, None, None), (0.7, 1.3, None), (0.7, None, 0.2), (None, 2.0, 0.2)],
)
def test_log_joint_matches_autograd(activation, ard_scale, output_scale, noise_std):
    torch.manual_seed(0)
    spec = MLPSpec(in_dim=3, widths=(7, 5), activation=activation)
    X = torch.rand(11, 3, dtype=torch.float64) * 2 - 1
    y = torch.randn(11, dtype=torch.float64)
    sur = HMCBNNSurrogate(ard_scale=ard_scale, output_scale=output_scale, noise_std=noise_std)
    groups = sur._groups(spec)
    log_sigma = None if noise_std is None else math.log(noise_std)
    lj = LogJoint(spec, X, y, sur._prior_std(spec), log_sigma=log_sigma, **groups)
    assert lj.dim == spec.num_params + lj.G + (noise_std is None)
    assert lj.G == (3 if ard_scale else 0) + (1 if output_scale else 0)

    def reference(z):  # the model written with autograd and torch.distributions
        def Normal(loc, scale):  # float64 parameters (python floats would make float32 ones)
            f64 = torch.float64
            return torch.distributions.Normal(
                torch.as_tensor(loc, dtype=f64), torch.as_tensor(scale, dtype=f64)
            )

        ls = lj.log_sigma(z)
        mean = spec.forward(lj.theta(z), X)[:, 0]
        logp = Normal(mean, ls.exp()).log_prob(y).sum()
        logp = logp + Normal(0.0, 1.0).log_prob(z[: spec.num_params]).sum()
        if lj.G:
            a = z[spec.num_params : spec.num_params + lj.G]
            logp = logp + Normal(0.0, groups["scale_std"]).log_prob(a).sum()
        if noise_std is None:
            logp = logp + Normal(math.log(0.1), 1.0).log_prob(ls)
        return -logp

    z = torch.randn(lj.dim, dtype=torch.float64).requires_grad_(True)
    U, grad = lj(z.detach())
    U_ref = reference(z)
    U_ref_value = float(U_ref.detach())
    (grad_ref,) = torch.autograd.grad(U_ref, z)
    # the hand-written U drops the constants of the normal densities
    consts = 0.5 * math.log(2 * math.pi) * (11 + spec.num_params + lj.G + (noise_std is None))
    if lj.G:
        consts += float(groups["scale_std"].log().sum())
    assert float(U) + consts == pytest.approx(U_ref_value, rel=1e-12)
    assert torch.allclose(grad, grad_ref, rtol=1e-9, atol=1e-11)


def test_ard_scales_multiply_the_rows_of_the_first_layer():
    spec = MLPSpec(in_dim=2, widths=(3,))
    sur = HMCBNNSurrogate(ard_scale=1.0, output_scale=1.0)
    lj = LogJoint(
        spec, torch.zeros(1, 2), torch.zeros(1), sur._prior_std(spec), **sur._groups(spec)
    )
    z = torch.ones(lj.dim, dtype=torch.float64)
    z[spec.num_params : spec.num_params + 3] = torch.tensor([math.log(2.0), math.log(3.0), 0.5])
    (W1, b1), (W2, b2) = spec.unflatten(lj.theta(z))
    s_in, s_out = math.sqrt(1.0 / 2), math.sqrt(1.0 / 3)  # sqrt(prior_var / fan_in)
    assert torch.allclose(W1[0], torch.full((3,), 2.0 * s_in, dtype=torch.float64))
    assert torch.allclose(W1[1], torch.full((3,), 3.0 * s_in, dtype=torch.float64))
    assert torch.allclose(b1, torch.ones_like(b1))  # biases: bias_var 1, no scale
    assert torch.allclose(W2, torch.full_like(W2, math.exp(0.5) * s_out))
    assert torch.allclose(b2, torch.ones_like(b2))


# -------------------------------------------------------------------- fit and model


def test_fit_returns_an_ensemble_of_the_kept_draws():
    X, Y = _data(12, 2, seed=0)
    sur = HMCBNNSurrogate(**{**FAST, "num_samples": 10, "thinning": 2, "warp": False})
    model = _fit(sur, X, Y)
    assert type(model) is SampledNetworkModel
    assert model.num_members == 2 * 5  # chains x num_samples // thinning
    assert sur.includes_observation_noise and sur.is_ensemble
    assert sur.last_diagnostics["kept"] == 10 and sur.last_diagnostics["leapfrog_steps"] > 0
    for shape in [(5, 2), (3, 4, 2)]:
        post = model.posterior(torch.rand(*shape, dtype=torch.float64))
        assert isinstance(post, EnsemblePosterior)
        assert post.mean.shape == (*shape[:-1], 1) and post.variance.shape == (*shape[:-1], 1)
        assert post.rsample(torch.Size([6])).shape == (6, *shape[:-1], 1)
    Xt = torch.rand(7, 2, dtype=torch.float64)
    plain = model.posterior(Xt)
    noisy = model.posterior(Xt, observation_noise=True)
    added = noisy.variance - plain.variance  # the mean noise variance, on the scale of Y
    expected = model.noise_var.mean() * model.y_std**2
    assert torch.allclose(added, expected.expand_as(added), rtol=1e-9)
    assert torch.allclose(noisy.mean, plain.mean)


def test_warped_model_maps_members_back_to_the_scale_of_y():
    g = torch.Generator().manual_seed(11)
    X = torch.rand(14, 1, generator=g, dtype=torch.float64)
    Y = -torch.exp(6 * X)  # a long lower tail: the warp compresses it (lmbda > 1)
    model = _fit(HMCBNNSurrogate(**FAST), X, Y)
    assert isinstance(model, WarpedNetworkModel) and model.warp.lmbda > 1.2
    plain = SampledNetworkModel(
        model.spec,
        model.theta,
        feature_map=model.feature_map,
        y_mean=model.y_mean,
        y_std=model.y_std,
        noise_var=model.noise_var,
    )
    Xt = torch.rand(2, 5, 1, generator=g, dtype=torch.float64)
    members = model.warp.untransform(plain.forward(Xt))[0]  # 2 x S x 5 x 1
    post = model.posterior(Xt)
    assert torch.allclose(model.forward(Xt), members)
    assert torch.allclose(post.mean, members.mean(-3))
    noisy = model.posterior(Xt, observation_noise=True)
    assert (noisy.variance > post.variance).all()
    # each member's noisy mean is its warped Gaussian pushed through the inverse warp
    w = plain.forward(Xt)[:, 0]
    sd = (model.noise_var[0] * model.y_std**2).sqrt()
    eps = torch.randn(200_000, 1, 1, 1, generator=g, dtype=torch.float64)
    mc = model.warp.untransform(w + sd * eps)[0].mean(0)
    assert torch.allclose(model._moments(w, sd**2)[0], mc, rtol=2e-2)
    assert torch.isfinite(noisy.rsample(torch.Size([4]))).all()


def test_same_seed_same_draws_whatever_the_global_state():
    X, Y = _data(10, 2, seed=1)
    a = _fit(HMCBNNSurrogate(**FAST), X, Y, seed=3, global_seed=1)
    b = _fit(HMCBNNSurrogate(**FAST), X, Y, seed=3, global_seed=2)
    c = _fit(HMCBNNSurrogate(**FAST), X, Y, seed=4, global_seed=1)
    assert torch.equal(a.theta, b.theta) and torch.equal(a.noise_var, b.noise_var)
    assert not torch.equal(a.theta, c.theta)


def test_fit_follows_a_smooth_1d_function():
    X, Y = _data(20, 1, seed=2)
    sur = HMCBNNSurrogate(
        widths=(32,), num_chains=2, num_warmup=40, num_samples=15, max_tree_depth=5, map_steps=300
    )
    model = _fit(sur, X, Y)
    Xt = torch.linspace(0.05, 0.95, 50, dtype=torch.float64).unsqueeze(-1)
    with torch.no_grad():
        post = model.posterior(Xt, observation_noise=True)
    err = post.mean - _smooth(Xt)
    assert float(err.pow(2).mean().sqrt()) < 0.1 * float(Y.std())  # measured 0.02-0.035
    z = err / post.variance.sqrt()
    assert float((z.abs() < 1.645).double().mean()) > 0.8


def test_acquisition_is_deterministic_with_finite_gradients():
    X, Y = _data(12, 2, seed=3)
    model = _fit(HMCBNNSurrogate(**FAST), X, Y)
    post = model.posterior(X[:1])
    sampler = get_sampler(post, torch.Size([16]), seed=0)
    s1, s2 = sampler(post), sampler(post)
    assert torch.equal(s1, s2)
    bounds = torch.stack([torch.zeros(2), torch.ones(2)]).to(X)
    ctx = AcquisitionContext(
        X_baseline=X,
        Y_baseline=Y,
        X_pending=None,
        best_f=float(Y.max()),
        domain=Domain(bounds=bounds),
        seed=0,
        iteration=12,
        q=1,
    )
    acqf = get_acquisition("qlognei").build(model, ctx)
    Xc = torch.rand(4, 1, 2, dtype=torch.float64, requires_grad=True)
    v1 = acqf(Xc)
    v1.sum().backward()
    assert torch.isfinite(v1).all() and torch.isfinite(Xc.grad).all()
    assert torch.equal(v1.detach(), acqf(Xc.detach()))


@pytest.mark.parametrize("case", ["constant", "n2", "duplicates"])
def test_degenerate_data(case):
    X, Y = _data(8, 2, seed=4)
    if case == "constant":
        Y = torch.full_like(Y, 5.0)
    elif case == "n2":
        X, Y = X[:2], Y[:2]
    else:
        X, Y = torch.cat([X[:4], X[:4]]), torch.cat([Y[:4], Y[:4] + 1.0])
    model = _fit(HMCBNNSurrogate(**FAST), X, Y)
    post = model.posterior(torch.rand(5, 2, dtype=torch.float64), observation_noise=True)
    assert torch.isfinite(post.mean).all() and torch.isfinite(post.variance).all()
    if case == "constant":
        assert (post.mean - 5.0).abs().max() < 0.5


def test_categorical_columns_are_one_hot():
    X, Y = _data(12, 2, seed=5)
    X[:, 1] = torch.arange(12, dtype=torch.float64) % 3
    cols = [Column("a", "continuous"), Column("c", "categorical", n_categories=3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = HMCBNNSurrogate(**FAST).fit(X, Y, cols, seed=0)
    assert model.spec.in_dim == 4
    assert model.posterior(X[:4]).mean.shape == (4, 1)


# -------------------------------------------------------------------- state, failures, options


def test_last_state_is_small_and_starts_the_next_fit():
    X, Y = _data(12, 2, seed=6)
    sur = HMCBNNSurrogate(**FAST)
    _fit(sur, X[:10], Y[:10])
    state = json.loads(json.dumps(sur.last_state))
    assert set(state) == {"step_size", "log_sigma"} and len(json.dumps(state)) < 200
    assert state["step_size"] > 0 and math.isfinite(state["log_sigma"])
    a = _fit(HMCBNNSurrogate(**FAST), X, Y, init=state, refit=False)
    b = _fit(HMCBNNSurrogate(**FAST), X, Y, init=state, refit=True)
    c = _fit(HMCBNNSurrogate(**FAST), X, Y)
    assert torch.equal(a.theta, b.theta)  # refit is ignored: always sampled afresh
    assert not torch.equal(a.theta, c.theta)  # the state is used
    bad = _fit(HMCBNNSurrogate(**FAST), X, Y, init={"step_size": "nan", "log_sigma": None})
    assert torch.equal(bad.theta, c.theta)  # unusable entries are ignored


def test_non_finite_draws_are_dropped_with_a_warning_or_raise(monkeypatch):
    X, Y = _data(10, 2, seed=7)
    sur = HMCBNNSurrogate(**FAST)
    run = sur._run_nuts

    def half_nan(log_joint, z0, step_size):
        draws, info = run(log_joint, z0, step_size)
        draws[::2] = float("nan")
        return draws, info

    monkeypatch.setattr(sur, "_run_nuts", half_nan)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        model = _fit(sur, X, Y, quiet=False)
    assert model.num_members == 10 and torch.isfinite(model.theta).all()
    assert "non-finite" in sur.last_fallback

    def all_nan(log_joint, z0, step_size):
        draws, info = run(log_joint, z0, step_size)
        return torch.full_like(draws, float("nan")), info

    monkeypatch.setattr(sur, "_run_nuts", all_nan)
    with pytest.raises(FitError, match="no finite draw"):
        _fit(sur, X, Y)

    def broken(log_joint, z0, step_size):
        raise RuntimeError("boom")

    monkeypatch.setattr(sur, "_run_nuts", broken)
    with pytest.raises(FitError, match="boom"):
        _fit(sur, X, Y)


def test_many_divergences_warn(monkeypatch):
    X, Y = _data(10, 2, seed=8)
    sur = HMCBNNSurrogate(**FAST)
    run = sur._run_nuts

    def divergent(log_joint, z0, step_size):
        draws, info = run(log_joint, z0, step_size)
        return draws, {**info, "divergent": 5}

    monkeypatch.setattr(sur, "_run_nuts", divergent)
    with pytest.warns(RuntimeWarning, match="10 of 20 NUTS draws diverged"):
        _fit(sur, X, Y, quiet=False)


def test_options_are_validated_and_reachable_from_the_registry():
    sur = get_surrogate("hmc_bnn", widths=[8, 8], num_samples=12, thinning=3, noise_std=0.1)
    assert isinstance(sur, HMCBNNSurrogate) and sur.widths == (8, 8) and sur.noise_std == 0.1
    for bad, match in [
        ({"widths": (0,)}, r"widths.*\(0,\)"),
        ({"activation": "gelu"}, r"activation.*'gelu'"),
        ({"prior_var": -1.0}, r"prior_var.*-1"),
        ({"num_samples": 0}, r"num_samples.*0"),
        ({"num_warmup": -1}, r"num_warmup.*-1"),
        ({"thinning": 30, "num_samples": 25}, r"thinning.*30"),
        ({"target_accept": 1.0}, r"target_accept.*1.0"),
        ({"num_chains": 1.5}, r"num_chains.*1.5"),
        ({"ard_scale": 0.0}, r"ard_scale.*0.0"),
    ]:
        with pytest.raises(ValueError, match=match):
            HMCBNNSurrogate(**bad)


def test_fixed_noise_is_the_models_noise():
    X, Y = _data(10, 2, seed=9)
    model = _fit(HMCBNNSurrogate(**FAST, noise_std=0.2), X, Y)
    assert torch.allclose(model.noise_var, torch.full_like(model.noise_var, 0.04))


# -------------------------------------------------------------------- calibration (defaults)


def _calibration(d, seeds=range(5), n=30, n_test=200):
    hits, nll, base = [], [], []
    for seed in seeds:
        X, Y = _data(n, d, seed=100 + seed)
        Xt, Yt = _data(n_test, d, seed=200 + seed)
        model = _fit(HMCBNNSurrogate(), X, Y, seed=seed)
        with torch.no_grad():
            post = model.posterior(Xt, observation_noise=True)
        mu, var = post.mean, post.variance
        hits.append(((Yt - mu).abs() <= 1.645 * var.sqrt()).double())
        nll.append(0.5 * torch.log(2 * math.pi * var) + 0.5 * (Yt - mu) ** 2 / var)
        m, v = Y.mean(), Y.var()
        base.append(0.5 * torch.log(2 * math.pi * v) + 0.5 * (Yt - m) ** 2 / v)
    return (
        float(torch.cat(hits).mean()),
        float(torch.cat(nll).mean()),
        float(torch.cat(base).mean()),
    )


@pytest.mark.slow
@pytest.mark.parametrize("d", [1, 5])
def test_calibration_with_the_defaults(d):
    """90% intervals cover 80-98% of held-out points; NLL beats N(mean, var of Y) (5 seeds)."""
    coverage, nll, base = _calibration(d)
    print(f"d={d}: 90% interval coverage {coverage:.3f}, NLL {nll:.3f} (constant {base:.3f})")
    assert 0.80 <= coverage <= 0.98, coverage
    assert nll < base, (nll, base)
