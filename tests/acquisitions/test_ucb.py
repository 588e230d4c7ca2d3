"""``ucb``: mean + sqrt(beta) std exactly, the GP-UCB schedule, the Monte Carlo switch."""

import math

import pytest
import torch
from botorch.acquisition.analytic import UpperConfidenceBound
from botorch.acquisition.monte_carlo import qUpperConfidenceBound
from botorch.models import SingleTaskGP

from acquisitions import AcquisitionContext, Domain, get_acquisition
from acquisitions.ucb import gp_ucb_beta


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # small linear algebra; threads only oversubscribe shared cores
    yield
    torch.set_num_threads(previous)


def _setup(pending=None, q=1, iteration=10, d=2):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(10, d, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X).sum(-1, keepdim=True)
    model = SingleTaskGP(X, Y).eval()
    bounds = torch.stack([torch.zeros(d), torch.ones(d)]).double()
    ctx = AcquisitionContext(
        X, Y, pending, float(Y.max()), Domain(bounds), seed=5, iteration=iteration, q=q
    )
    return model, ctx


X_TEST = torch.tensor([[[0.2, 0.9]], [[0.5, 0.5]], [[0.95, 0.05]]], dtype=torch.float64)


@pytest.mark.parametrize("beta", [0.0, 0.5, 4.0, None])
def test_ucb_equals_mean_plus_sqrt_beta_std(beta):
    model, ctx = _setup()
    ucb = get_acquisition("ucb", beta=beta)
    acq = ucb.build(model, ctx)
    assert isinstance(acq, UpperConfidenceBound)
    b = ucb.beta_for(ctx)
    assert b == (beta if beta is not None else gp_ucb_beta(2, 10))
    post = model.posterior(X_TEST)
    expected = post.mean.reshape(-1) + math.sqrt(b) * post.variance.sqrt().reshape(-1)
    torch.testing.assert_close(acq(X_TEST), expected, rtol=0, atol=1e-10)


def test_default_schedule_values():
    # 0.2 * 2 log(d t^2 pi^2 / (6 delta)) with delta = 0.1
    assert gp_ucb_beta(4, 10) == pytest.approx(0.4 * math.log(4 * 100 * math.pi**2 / 0.6))
    assert gp_ucb_beta(4, 10) == pytest.approx(3.517, abs=1e-3)
    assert gp_ucb_beta(4, 100) == pytest.approx(5.359, abs=1e-3)
    assert gp_ucb_beta(1, 0) == gp_ucb_beta(1, 1)  # t is at least 1
    # grows with t and d, logarithmically
    assert gp_ucb_beta(2, 50) < gp_ucb_beta(2, 100) < gp_ucb_beta(4, 100)
    ucb = get_acquisition("ucb", delta=0.05, scale=1.0)
    _, ctx = _setup(iteration=30)
    assert ucb.beta_for(ctx) == pytest.approx(2 * math.log(2 * 900 * math.pi**2 / 0.3))


def test_monte_carlo_form_with_pending_points_matches_in_expectation():
    model, ctx = _setup(q=2)
    mc = get_acquisition("ucb", beta=2.0, num_samples=4096).build(model, ctx)
    assert isinstance(mc, qUpperConfidenceBound)
    exact = get_acquisition("ucb", beta=2.0).build(model, _setup()[1])
    torch.testing.assert_close(mc(X_TEST), exact(X_TEST), rtol=0.01, atol=1e-3)
    P = torch.tensor([[0.3, 0.3]], dtype=torch.float64)
    with_p = get_acquisition("ucb").build(model, _setup(pending=P)[1])
    assert isinstance(with_p, qUpperConfidenceBound)
    torch.testing.assert_close(with_p.X_pending, P)


def test_gradients_are_finite():
    for kw in ({}, {"pending": torch.tensor([[0.3, 0.3]], dtype=torch.float64)}):
        model, ctx = _setup(**kw)
        acq = get_acquisition("ucb").build(model, ctx)
        x = X_TEST.clone().requires_grad_(True)
        acq(x).sum().backward()
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        ({"beta": -1.0}, r"beta.*-1\.0"),
        ({"beta": "big"}, r"beta.*'big'"),
        ({"delta": 1.5}, r"delta.*1\.5"),
        ({"delta": 0}, r"delta.*0"),
        ({"scale": -0.2}, r"scale.*-0\.2"),
        ({"num_samples": 0}, r"num_samples.*0"),
    ],
)
def test_options_are_validated(opts, match):
    with pytest.raises(ValueError, match=match):
        get_acquisition("ucb", **opts)
