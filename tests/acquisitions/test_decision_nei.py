"""decision_nei: closed forms, its own Monte Carlo estimate, log space, pending points."""

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from botorch.acquisition.analytic import LogExpectedImprovement
from botorch.models import SingleTaskGP
from botorch.models.ensemble import EnsembleModel
from botorch.models.transforms.outcome import Log
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import RBFKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood

from acquisitions import AcquisitionContext, Domain, UnsupportedModelError, get_acquisition
from acquisitions.decision_nei import DecisionNoisyExpectedImprovement, log_expected_max_gain

D = torch.float64
ROOT = Path(__file__).resolve().parents[2]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _gp(X, Y, noise, lengthscale=None, outputscale=None, transform=True):
    """A GP with fixed noise (standardized units) and optionally fixed kernel."""
    lik = GaussianLikelihood(noise_constraint=GreaterThan(1e-14, transform=None))
    lik.noise = noise
    kw = {} if transform else {"outcome_transform": None}
    if lengthscale is not None:
        kern = ScaleKernel(RBFKernel())
        kern.base_kernel.lengthscale = lengthscale
        kern.outputscale = outputscale
        kw["covar_module"] = kern
    return SingleTaskGP(X, Y, likelihood=lik, **kw).eval()


def _noisy_gp():
    g = _gen(0)
    X = torch.rand(12, 2, generator=g, dtype=D)
    Y = torch.sin(5 * X).sum(-1, keepdim=True) + 0.3 * torch.randn(12, 1, generator=g, dtype=D)
    return _gp(X, Y, noise=0.1), X


def _brute(model, X_eval, X_pending, X_new, n=400_000, seed=1):
    """Monte Carlo of the definition: sample noisy observations, condition the means.

    Returns mean and standard error of
    ``max_all mu(after P and X_new) - max_{eval, P} mu(after P)``.
    """
    P = X_pending if X_pending is not None else X_eval[:0]
    A = torch.cat([X_eval, P, X_new])
    post = model.posterior(A)
    mu, S = post.mean.squeeze(-1), post.distribution.covariance_matrix
    new = torch.cat([P, X_new])
    tau2 = (
        model.posterior(new, observation_noise=True).variance - model.posterior(new).variance
    ).squeeze(-1)
    k, p = len(X_eval), len(P)
    iw = torch.arange(k, len(A))
    C = S[iw][:, iw] + torch.diag(tau2)
    eps = torch.randn(n, len(iw), generator=_gen(seed), dtype=D)
    y = mu[iw] + eps @ torch.linalg.cholesky(C).T
    upd = mu + (y - mu[iw]) @ torch.linalg.solve(C, S[iw]).contiguous()
    if p:
        iP = iw[:p]
        upd_P = mu + (y[:, :p] - mu[iP]) @ torch.linalg.solve(C[:p, :p], S[iP])
        base = upd_P[:, : k + p].max(-1).values
    else:
        base = mu[:k].max().expand(n)
    h = upd.max(-1).values - base
    return h.mean().item(), (h.std() / math.sqrt(n)).item()


def test_envelope_matches_brute_force_with_ties_and_dominated_lines():
    g = _gen(1)
    a = torch.randn(6, 7, generator=g, dtype=D)
    b = torch.randn(6, 7, generator=g, dtype=D)
    a[0, 1], b[0, 1] = a[0, 0], b[0, 0]  # duplicate lines
    b[1, 2], a[1, 2] = b[1, 3], a[1, 3] - 0.5  # parallel lines
    a[2, :3] = torch.tensor([0.0, 1.0, 2.0])  # three lines through z = -1
    b[2, :3] = torch.tensor([0.0, 1.0, 2.0])
    a[3, 4], b[3, 4] = -10.0, 0.0  # dominated everywhere
    b[4] = 0.0  # all flat: no gain at all
    Z = torch.randn(1_000_000, generator=g, dtype=D)
    exact = log_expected_max_gain(a, b).exp()
    assert exact[4].item() == 0.0
    for r in [0, 1, 2, 3, 5]:
        h = (a[r] + b[r] * Z[:, None]).max(-1).values - a[r].max()
        se = (h.std() / math.sqrt(len(Z))).item()
        assert abs(exact[r].item() - h.mean().item()) < 3 * se, r
    # two lines: the closed form sigma * f(d / sigma)
    a2, b2 = torch.tensor([0.0, -1.0], dtype=D), torch.tensor([0.0, 2.0], dtype=D)
    two = log_expected_max_gain(a2, b2)
    u = torch.tensor(-0.5, dtype=D)
    f = u * torch.special.ndtr(u) + torch.exp(-(u**2) / 2) / math.sqrt(2 * math.pi)
    assert two.exp().item() == pytest.approx(2 * f.item(), rel=1e-12)


def test_noise_free_limit_is_expected_improvement():
    g = _gen(0)
    X = torch.rand(10, 2, generator=g, dtype=D)
    Y = 10 * torch.sin(5 * X).sum(-1, keepdim=True)
    model = _gp(X, Y, noise=1e-10)
    acq = DecisionNoisyExpectedImprovement(model, X)
    best = model.posterior(X).mean.max()  # = max(Y) up to 1e-8
    ei = LogExpectedImprovement(model, best_f=best.detach())  # float64 best_f
    x = torch.rand(64, 1, 2, generator=g, dtype=D)
    v, e = acq(x), ei(x)
    moderate = e > -10  # the far tail amplifies rounding of the variances
    assert moderate.sum() > 20
    assert torch.allclose(v[moderate], e[moderate], atol=1e-7, rtol=0)  # EI to 1e-7 relative
    assert torch.allclose(v, e, atol=0, rtol=1e-6)  # log EI down to -1300


def test_exact_value_agrees_with_its_monte_carlo_estimate():
    model, X = _noisy_gp()
    acq = DecisionNoisyExpectedImprovement(model, X, prune_baseline=False)
    pruned = DecisionNoisyExpectedImprovement(model, X)
    for x in torch.tensor([[0.3, 0.3], [0.9, 0.1], [0.5, 0.8]], dtype=D):
        value = acq(x[None]).exp().item()
        mean, se = _brute(model, X, None, x[None])
        assert abs(value - mean) < 3 * se
        assert pruned(x[None]).exp().item() == pytest.approx(value, rel=1e-6)


def test_log_value_is_finite_where_the_plain_value_underflows():
    X = torch.tensor([[0.1], [0.5], [0.9]], dtype=D)
    Y = torch.tensor([[0.0], [0.0], [40.0]], dtype=D)
    model = _gp(X, Y, noise=1e-10, lengthscale=0.2, outputscale=1.0, transform=False)
    acq = DecisionNoisyExpectedImprovement(model, X)
    x = torch.tensor([[[0.11]], [[0.2]], [[0.3]]], dtype=D, requires_grad=True)
    v = acq(x)
    assert torch.isfinite(v).all() and (v.exp() == 0).all()  # plain EI underflows
    ei = LogExpectedImprovement(model, best_f=model.posterior(X).mean.max().detach())(x)
    assert torch.allclose(v, ei, rtol=1e-6)  # noise-free: log EI, here below -2000
    v.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad.abs() > 0).all()


def test_gradients_are_finite_on_every_path():
    model, X = _noisy_gp()
    pending = torch.tensor([[0.2, 0.7], [0.6, 0.6]], dtype=D)
    for X_pending, q in [(None, 1), (pending, 1), (None, 2), (pending, 3)]:
        acq = DecisionNoisyExpectedImprovement(model, X, X_pending=X_pending, num_samples=16)
        x = torch.rand(5, q, 2, generator=_gen(q), dtype=D, requires_grad=True)
        v = acq(x)
        v.sum().backward()
        assert v.shape == (5,) and torch.isfinite(v).all()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_pending_and_batch_values_agree_with_monte_carlo():
    model, X = _noisy_gp()
    P = torch.tensor([[0.35, 0.3]], dtype=D)
    x = torch.tensor([[0.3, 0.35]], dtype=D)
    acq = DecisionNoisyExpectedImprovement(model, X, X_pending=P, num_samples=512, seed=3)
    mean, se = _brute(model, X, P, x)
    assert abs(acq(x[None]).exp().item() - mean) < 3 * se + 0.01 * mean  # + quasi-MC error
    joint = DecisionNoisyExpectedImprovement(model, X, num_samples=512, seed=3)
    X2 = torch.cat([P, x])
    mean2, se2 = _brute(model, X, None, X2)
    assert abs(joint(X2[None]).exp().item() - mean2) < 3 * se2 + 0.01 * mean2
    # the joint value splits into the pending point's and the increment over it
    alone = joint(P[None]).exp().item()
    assert alone + acq(x[None]).exp().item() == pytest.approx(mean2, rel=0.03)
    # deterministic given the seed; set_X_pending(None) returns to the exact value
    again = DecisionNoisyExpectedImprovement(model, X, X_pending=P, num_samples=512, seed=3)
    assert torch.equal(acq(x[None]), again(x[None]))
    acq.set_X_pending(None)
    assert acq(x[None]).item() == DecisionNoisyExpectedImprovement(model, X)(x[None]).item()


def test_a_pending_point_that_cannot_matter_leaves_the_exact_value():
    # Short lengthscale: a far pending point is uncorrelated with x and the data,
    # and its mean (about 0) cannot reach the incumbent (about 5).
    g = _gen(2)
    X = torch.rand(15, 2, generator=g, dtype=D) * 0.5
    Y = torch.randn(15, 1, generator=g, dtype=D) * 0.5
    Y[0] = 5.0
    model = _gp(X, Y, noise=0.01, lengthscale=0.05, outputscale=1.0, transform=False)
    far = torch.tensor([[0.95, 0.95]], dtype=D)
    x = X[:1] + 0.02
    exact = DecisionNoisyExpectedImprovement(model, X)(x[None])
    pending = DecisionNoisyExpectedImprovement(model, X, X_pending=far, num_samples=16)
    assert pending(x[None]).item() == pytest.approx(exact.item(), abs=1e-6)
    joint = DecisionNoisyExpectedImprovement(model, X, num_samples=16)
    assert joint(torch.cat([far, x])[None]).item() == pytest.approx(exact.item(), abs=1e-6)


def test_build_takes_the_context_and_refuses_unsupported_models():
    model, X = _noisy_gp()
    bounds = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=D)
    P = torch.tensor([[0.5, 0.5]], dtype=D)
    ctx = AcquisitionContext(X, model.train_targets[:, None], P, 0.0, Domain(bounds), seed=5)
    acq = get_acquisition("decision_nei", num_samples=8).build(model, ctx)
    assert isinstance(acq, DecisionNoisyExpectedImprovement) and acq.seed == 5
    assert torch.equal(acq.X_pending, P) and acq.num_samples == 8
    with pytest.raises(ValueError, match="num_samples"):
        get_acquisition("decision_nei", num_samples=0)

    class Members(EnsembleModel):
        def forward(self, X):
            return X.sum(-1, keepdim=True).unsqueeze(-3).expand(*X.shape[:-2], 4, X.shape[-2], 1)

    with pytest.raises(UnsupportedModelError, match="sample based.*qlognei"):
        get_acquisition("decision_nei").build(Members(), ctx)
    Ypos = torch.rand(12, 1, generator=_gen(3), dtype=D) + 0.1
    logged = SingleTaskGP(X, Ypos, outcome_transform=Log()).eval()
    with pytest.raises(UnsupportedModelError, match="Gaussian posterior"):
        get_acquisition("decision_nei").build(logged, ctx)


def test_optimizer_asks_and_tells_with_decision_nei(make_optimizer):
    from bayesopt import Float

    opt = make_optimizer({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}, acquisition="decision_nei")
    g = _gen(4)
    for _ in range(12):
        t = opt.ask()
        x, y = t.params["x"], t.params["y"]
        noise = 0.05 * torch.randn(1, generator=g).item()
        opt.tell(t, -((x - 0.3) ** 2) - (y - 0.6) ** 2 + noise)
    sources = [t.attrs.get("source") for t in opt.trials]
    assert sources.count("model") >= 4 and "fallback" not in sources
    batch = opt.ask_batch(2)  # sequential greedy: the second is asked with the first pending
    assert len({tuple(t.params.values()) for t in batch}) == 2
    assert all(t.attrs.get("source") == "model" for t in batch)


@pytest.mark.slow
def test_cli_runs_branin_with_decision_nei(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bayesopt", "acquisition=decision_nei", "task=branin",
           "n_trials=20", f"hydra.run.dir={out}"]  # fmt: skip
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "results.json").exists()
    shutil.rmtree(out, ignore_errors=True)
