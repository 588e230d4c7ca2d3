import math

import pytest
import torch
from botorch.acquisition.analytic import LogExpectedImprovement
from botorch.acquisition.logei import qLogExpectedImprovement, qLogNoisyExpectedImprovement
from botorch.models import SingleTaskGP

from acquisitions import AcquisitionContext, Domain, available_acquisitions, get_acquisition


def _setup(pending=False):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(10, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1, keepdim=True)
    model = SingleTaskGP(X, Y).eval()
    P = torch.rand(2, 2, generator=g, dtype=torch.float64) if pending else None
    bounds = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    ctx = AcquisitionContext(X, Y, P, float(Y.max()), Domain(bounds), seed=7)
    return model, ctx


def test_registry_lists_names_and_refuses_unknown_ones():
    assert {"qlognei", "qnei", "logei"} <= set(available_acquisitions())
    with pytest.raises(ValueError, match=r"'qei2'.*valid names are \["):
        get_acquisition("qei2")
    with pytest.raises(ValueError, match=r"num_samples.*0"):
        get_acquisition("qlognei", num_samples=0)


def test_qlognei_is_seeded_and_takes_pending_points():
    model, ctx = _setup(pending=True)
    a = get_acquisition("qlognei").build(model, ctx)
    b = get_acquisition("qlognei").build(model, ctx)
    assert isinstance(a, qLogNoisyExpectedImprovement)
    # incremental noisy EI: pending points join the baseline the candidate must beat
    assert torch.equal(a.X_baseline[-2:], ctx.X_pending)
    x = torch.rand(5, 1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    va, vb = a(x), b(x)
    assert torch.equal(va, vb) and torch.isfinite(va).all()


def test_a_pending_point_is_worth_much_less_once_pending():
    # Re-proposing a pending point adds (almost) nothing over the pending point itself.
    model, ctx = _setup(pending=True)
    _, ctx_free = _setup(pending=False)
    x = ctx.X_pending[:1].unsqueeze(0)
    with_pending = get_acquisition("qlognei").build(model, ctx)(x).item()
    without = get_acquisition("qlognei").build(model, ctx_free)(x).item()
    assert with_pending < without - 2.0  # log scale: at least e^2 times smaller


def test_logei_is_analytic_without_pending_and_matches_the_closed_form():
    model, ctx = _setup()
    acq = get_acquisition("logei").build(model, ctx)
    assert isinstance(acq, LogExpectedImprovement)
    x = torch.tensor([[0.2, 0.9]], dtype=torch.float64)
    post = model.posterior(x)
    mu, sigma = post.mean.item(), post.variance.sqrt().item()
    z = (mu - ctx.best_f) / sigma
    normal = torch.distributions.Normal(0.0, 1.0)
    ei = sigma * (z * normal.cdf(torch.tensor(z)) + normal.log_prob(torch.tensor(z)).exp())
    assert acq(x.unsqueeze(0)).item() == pytest.approx(math.log(ei.item()), rel=1e-6)
    _, ctx_p = _setup(pending=True)
    assert isinstance(get_acquisition("logei").build(model, ctx_p), qLogExpectedImprovement)


def test_noise_free_gp_gets_the_exact_analytic_form_which_matches_monte_carlo():
    from botorch.acquisition.analytic import ExpectedImprovement
    from gpytorch.constraints import GreaterThan
    from gpytorch.likelihoods import GaussianLikelihood

    g = torch.Generator().manual_seed(0)
    X = torch.rand(10, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1, keepdim=True)
    likelihood = GaussianLikelihood(noise_constraint=GreaterThan(1e-7))
    likelihood.noise = 1e-6
    model = SingleTaskGP(X, Y, likelihood=likelihood).eval()
    bounds = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    ctx = AcquisitionContext(X, Y, None, float(Y.max()), Domain(bounds), seed=7)
    assert isinstance(get_acquisition("qlognei").build(model, ctx), qLogNoisyExpectedImprovement)
    exact = get_acquisition("qlognei", analytic_if_noise_free=True).build(model, ctx)
    assert isinstance(exact, LogExpectedImprovement)
    assert exact.best_f.dtype == torch.float64 and exact.best_f.item() == float(Y.max())
    qnei = get_acquisition("qnei", analytic_if_noise_free=True)
    assert isinstance(qnei.build(model, ctx), ExpectedImprovement)
    mc = get_acquisition("qlognei", analytic_if_noise_free=False, num_samples=4096).build(
        model, ctx
    )
    assert isinstance(mc, qLogNoisyExpectedImprovement)
    x = torch.rand(6, 1, 2, generator=g, dtype=torch.float64)
    e, m = exact(x), mc(x)
    useful = e > -6  # where EI is not negligible, noise-free NEI (MC) agrees with EI (exact)
    assert useful.sum() >= 2
    torch.testing.assert_close(m[useful].exp(), e[useful].exp(), rtol=0.1, atol=1e-3)
    # pending points, or a learned noise, keep the Monte Carlo noisy EI
    _, ctx_pending = _setup(pending=True)
    switching = get_acquisition("qlognei", analytic_if_noise_free=True)
    assert isinstance(switching.build(model, ctx_pending), qLogNoisyExpectedImprovement)
    noisy_model, ctx_noisy = _setup()
    assert noisy_model.likelihood.noise.item() > 1e-5
    assert isinstance(switching.build(noisy_model, ctx_noisy), qLogNoisyExpectedImprovement)


@pytest.mark.parametrize("name", ["qlognei", "qnei"])
@pytest.mark.parametrize(("q", "pending"), [(1, False), (2, False), (1, True)])
def test_fast_joint_samples_give_botorchs_values_and_gradients(name, q, pending, monkeypatch):
    # The fast GP's plain-tensor moments feed the same cached-root update as botorch's
    # posterior path: same acquisition values and gradients, to rounding.
    from botorch.models.transforms.outcome import Standardize

    from surrogates.exact_gp import FastSingleTaskGP

    g = torch.Generator().manual_seed(3)
    X = torch.rand(30, 3, generator=g, dtype=torch.float64)
    noise = 0.3 * torch.randn(30, 1, generator=g, dtype=torch.float64)
    Y = 10 * torch.sin(4 * X).sum(-1, keepdim=True) + noise
    model = FastSingleTaskGP(X, Y, outcome_transform=Standardize(1)).eval()
    P = torch.rand(2, 3, generator=g, dtype=torch.float64) if pending else None
    bounds = torch.tensor([[0.0] * 3, [1.0] * 3], dtype=torch.float64)
    ctx = AcquisitionContext(X, Y, P, float(Y.max()), Domain(bounds), seed=5)
    fast = get_acquisition(name).build(model, ctx)
    slow = get_acquisition(name).build(model, ctx)
    monkeypatch.setattr(slow, "_fast_new_samples", lambda X: None)  # botorch's own path
    calls = []
    original = model.joint_moments
    monkeypatch.setattr(model, "joint_moments", lambda Z: calls.append(Z) or original(Z))
    x = torch.rand(6, q, 3, generator=g, dtype=torch.float64)
    fast(x), slow(x)  # the first call sets up the base samples for this q
    xf, xs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    vf, vs = fast(xf), slow(xs)
    assert calls, "the fast path was not taken"
    torch.testing.assert_close(vf, vs, rtol=1e-9, atol=1e-9)
    gf = torch.autograd.grad(vf.sum(), xf)[0]
    gs = torch.autograd.grad(vs.sum(), xs)[0]
    torch.testing.assert_close(gf, gs, rtol=1e-7, atol=1e-8)
    assert fast.X_baseline.shape[-2] < 30 + (2 if pending else 0)  # pruned
