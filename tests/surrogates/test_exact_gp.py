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
