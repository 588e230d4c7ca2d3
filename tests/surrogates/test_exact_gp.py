"""The fast exact posterior agrees with gpytorch's prediction strategy."""

from __future__ import annotations

import pytest
import torch
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize

from surrogates.exact_gp import FastMixedSingleTaskGP, FastSingleTaskGP


def _pair(fast_cls, ref_cls, **kwargs):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(40, 3, generator=g, dtype=torch.float64)
    if "cat_dims" in kwargs:
        X[:, -1] = torch.randint(0, 3, (40,), generator=g).double()
    Y = (3 * X).sin().sum(-1, keepdim=True) + 0.05 * torch.randn(40, 1, generator=g).double()
    ref = ref_cls(X, Y, outcome_transform=Standardize(1), **kwargs)
    fast = fast_cls(X, Y, outcome_transform=Standardize(1), **kwargs)
    with torch.no_grad():  # non-default hyperparameters, so a mismatch would show
        for p in ref.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    fast.load_state_dict(ref.state_dict())
    return ref.eval(), fast.eval()


@pytest.mark.parametrize(
    ("fast_cls", "ref_cls", "kwargs"),
    [
        (FastSingleTaskGP, SingleTaskGP, {}),
        (FastMixedSingleTaskGP, MixedSingleTaskGP, {"cat_dims": [2]}),
    ],
)
@pytest.mark.parametrize("observation_noise", [False, True])
def test_mean_covariance_and_gradients_match_gpytorch(
    fast_cls, ref_cls, kwargs, observation_noise
):
    ref, fast = _pair(fast_cls, ref_cls, **kwargs)
    X = torch.rand(5, 4, 3, dtype=torch.float64)
    if kwargs:
        X[..., -1] = torch.randint(0, 3, (5, 4)).double()
    X.requires_grad_(True)
    p_ref = ref.posterior(X, observation_noise=observation_noise)
    p_fast = fast.posterior(X, observation_noise=observation_noise)
    assert p_fast.mean.shape == p_ref.mean.shape == (5, 4, 1)
    torch.testing.assert_close(p_fast.mean, p_ref.mean, rtol=1e-9, atol=1e-10)
    cov_ref = p_ref.distribution.covariance_matrix
    torch.testing.assert_close(
        p_fast.distribution.covariance_matrix, cov_ref, rtol=1e-8, atol=1e-10
    )
    g_ref = torch.autograd.grad((p_ref.mean.sum() + p_ref.variance.sum()), X)[0]
    g_fast = torch.autograd.grad((p_fast.mean.sum() + p_fast.variance.sum()), X)[0]
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-7, atol=1e-9)


def test_cache_follows_hyperparameters_and_training_data():
    ref, fast = _pair(FastSingleTaskGP, SingleTaskGP)
    X = torch.rand(6, 3, dtype=torch.float64)
    before = fast.posterior(X).mean
    with torch.no_grad():
        fast.covar_module.lengthscale = fast.covar_module.lengthscale * 2
    fresh, _ = _pair(FastSingleTaskGP, SingleTaskGP)  # gpytorch's caches in `ref` are stale
    with torch.no_grad():
        fresh.covar_module.lengthscale = fresh.covar_module.lengthscale * 2
    torch.testing.assert_close(fast.posterior(X).mean, fresh.posterior(X).mean)
    assert not torch.allclose(fast.posterior(X).mean, before)


def test_conditioned_models_see_the_new_points():
    ref, fast = _pair(FastSingleTaskGP, SingleTaskGP)
    X = torch.rand(6, 3, dtype=torch.float64)
    x_new, y_new = torch.full((1, 3), 0.5, dtype=torch.float64), torch.tensor([[10.0]]).double()
    ref.posterior(X)  # gpytorch conditions only after one prediction; the fast model needs none
    cond_fast = fast.condition_on_observations(fast.transform_inputs(x_new), y_new)
    cond_ref = ref.condition_on_observations(ref.transform_inputs(x_new), y_new)
    torch.testing.assert_close(cond_fast.posterior(X).mean, cond_ref.posterior(X).mean)


def test_fantasy_models_fall_back_to_gpytorch():
    from botorch.sampling import SobolQMCNormalSampler

    ref, fast = _pair(FastSingleTaskGP, SingleTaskGP)
    Xf = torch.rand(2, 3, dtype=torch.float64)
    sampler = SobolQMCNormalSampler(torch.Size([4]), seed=0)
    f_fast = fast.fantasize(Xf, sampler)
    f_ref = ref.fantasize(Xf, SobolQMCNormalSampler(torch.Size([4]), seed=0))
    X = torch.rand(3, 3, dtype=torch.float64)
    torch.testing.assert_close(f_fast.posterior(X).mean, f_ref.posterior(X).mean)


def test_joint_moments_are_the_posterior_moments_without_a_posterior_object():
    ref, fast = _pair(FastSingleTaskGP, SingleTaskGP)
    X = torch.rand(5, 4, 3, dtype=torch.float64, requires_grad=True)
    mean, cov = fast.joint_moments(X)
    p_ref = ref.posterior(X)
    assert mean.shape == (5, 4) and cov.shape == (5, 4, 4)
    torch.testing.assert_close(mean, p_ref.mean.squeeze(-1), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(cov, p_ref.distribution.covariance_matrix, rtol=1e-8, atol=1e-10)
    g_ref = torch.autograd.grad(p_ref.mean.sum() + p_ref.variance.sum(), X)[0]
    g_fast = torch.autograd.grad(mean.sum() + cov.diagonal(dim1=-2, dim2=-1).sum(), X)[0]
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-7, atol=1e-9)


def test_joint_moments_decline_what_the_fast_path_does_not_cover():
    _, fast = _pair(FastSingleTaskGP, SingleTaskGP)
    assert fast.joint_moments(torch.rand(4, 3, dtype=torch.float64)) is None  # no batch dim
    fast.train()
    assert fast.joint_moments(torch.rand(2, 4, 3, dtype=torch.float64)) is None
    fast.eval()
    from botorch.models.transforms.outcome import Log

    g = torch.Generator().manual_seed(1)
    X = torch.rand(10, 3, generator=g, dtype=torch.float64)
    logged = FastSingleTaskGP(X, X.sum(-1, keepdim=True) + 1, outcome_transform=Log()).eval()
    assert logged.joint_moments(torch.rand(2, 4, 3, dtype=torch.float64)) is None


@pytest.mark.parametrize(("scaled", "n"), [(False, 25), (True, 25), (False, 150)])
def test_fast_mll_loss_is_gpytorchs_loss(scaled, n):
    from gpytorch.kernels import RBFKernel, ScaleKernel
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from gpytorch.priors import GammaPrior

    from surrogates.exact_gp import fast_mll_loss

    g = torch.Generator().manual_seed(2)
    X = torch.rand(n, 3, generator=g, dtype=torch.float64)  # 150: inner-product distances
    Y = (4 * X).cos().sum(-1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g).double()
    covar = None
    if scaled:
        covar = ScaleKernel(RBFKernel(ard_num_dims=3), outputscale_prior=GammaPrior(2.0, 0.15))
    model = FastSingleTaskGP(X, Y, outcome_transform=Standardize(1), covar_module=covar)
    kernel = model.covar_module.base_kernel if scaled else model.covar_module
    with torch.no_grad():  # away from the initial values, so a mismatch would show
        kernel.lengthscale = torch.tensor([[0.3, 0.9, 2.0]], dtype=torch.float64)
        model.mean_module.constant = 0.4
        model.likelihood.noise = 0.05
        if scaled:
            model.covar_module.outputscale = 1.7
    model.train()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    ref = -mll(model(*model.train_inputs), model.train_targets)
    fast = fast_mll_loss(model)()
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)
    params = [p for p in model.parameters() if p.requires_grad]
    g_ref = torch.autograd.grad(ref, params)
    g_fast = torch.autograd.grad(fast, params)
    for a, b in zip(g_fast, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_fast_mll_loss_declines_other_models():
    from surrogates.exact_gp import fast_mll_loss

    ref, fast = _pair(FastMixedSingleTaskGP, MixedSingleTaskGP, cat_dims=[2])
    assert fast_mll_loss(fast) is None


def test_squared_distances_agree_between_the_direct_and_the_inner_product_form():
    from surrogates import exact_gp

    g = torch.Generator().manual_seed(5)
    A = torch.rand(3, 40, 4, generator=g, dtype=torch.float64)
    B = torch.rand(30, 4, generator=g, dtype=torch.float64)
    direct = exact_gp.sq_dist(A, B)
    same_direct = exact_gp.sq_dist(A[0], A[0], same=True)
    limit, exact_gp.DIRECT_DISTANCES = exact_gp.DIRECT_DISTANCES, 0
    try:
        via_products = exact_gp.sq_dist(A, B)
        same_products = exact_gp.sq_dist(A[0], A[0], same=True)
    finally:
        exact_gp.DIRECT_DISTANCES = limit
    torch.testing.assert_close(via_products, direct, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(same_products, same_direct, rtol=1e-10, atol=1e-12)
    assert (same_products.diagonal() == 0).all() and (via_products >= 0).all()
