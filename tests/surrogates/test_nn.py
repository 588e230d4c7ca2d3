"""Batched functional MLPs and the SampledNetworkModel (surrogates/nn.py)."""

from __future__ import annotations

import math

import pytest
import torch
from botorch.acquisition.cached_cholesky import supports_cache_root
from botorch.exceptions.errors import UnsupportedError
from botorch.sampling.get_sampler import get_sampler
from botorch.sampling.index_sampler import IndexSampler

from acquisitions import get_acquisition
from acquisitions.base import AcquisitionContext, Domain
from acquisitions.optimize import OptimizerSettings, optimize_acquisition
from surrogates import Column
from surrogates.features import FeatureMap
from surrogates.nn import (
    MLPSpec,
    NetworkEnsemblePosterior,
    SampledNetworkModel,
    StratifiedIndexSampler,
)

D = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _model(S: int = 4, d: int = 2, noise=None, out_dim: int = 1, **kw) -> SampledNetworkModel:
    spec = MLPSpec(d, (8, 8), "tanh", out_dim=out_dim)
    return SampledNetworkModel(spec, spec.init(S, _gen()), noise_var=noise, **kw)


def test_num_params_and_layer_dims():
    spec = MLPSpec(3, (5, 4))
    assert spec.layer_dims == [(3, 5), (5, 4), (4, 1)]
    assert spec.num_params == 3 * 5 + 5 + 5 * 4 + 4 + 4 * 1 + 1 == 49
    assert MLPSpec(2, ()).num_params == 3  # linear model


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_forward_matches_per_member_linear_layers(activation):
    spec = MLPSpec(3, (5, 4), activation)
    theta = spec.init(3, _gen(1))
    X = torch.rand(2, 6, 3, generator=_gen(2), dtype=D)
    out = spec.forward(theta, X)
    assert out.shape == (2, 3, 6, 1)
    act = torch.tanh if activation == "tanh" else torch.relu
    for s in range(3):
        h = X
        layers = spec.unflatten(theta[s])
        for j, (W, b) in enumerate(layers):
            h = h @ W + b
            h = act(h) if j < len(layers) - 1 else h
        torch.testing.assert_close(out[:, s], h, rtol=0, atol=1e-14)
        torch.testing.assert_close(spec.forward(theta[s], X), h, rtol=0, atol=1e-14)


def test_unflatten_packs_weights_then_bias_per_layer():
    spec = MLPSpec(2, (3,))
    theta = torch.arange(spec.num_params, dtype=D)
    (W1, b1), (W2, b2) = spec.unflatten(theta)
    assert W1.tolist() == [[0, 1, 2], [3, 4, 5]] and b1.tolist() == [[6, 7, 8]]
    assert W2.tolist() == [[9], [10], [11]] and b2.tolist() == [[12]]


def test_absorb_input_affine_is_exact():
    spec = MLPSpec(3, (6, 5))
    theta = spec.init(4, _gen())
    X = torch.rand(10, 3, generator=_gen(3), dtype=D)
    folded = spec.absorb_input_affine(theta, 2.0, -1.0)
    torch.testing.assert_close(
        spec.forward(folded, X), spec.forward(theta, 2 * X - 1), rtol=0, atol=1e-13
    )


def test_init_scales_and_reproducibility():
    spec = MLPSpec(20, (30,))
    a, b = spec.init(200, _gen(5)), spec.init(200, _gen(5))
    assert torch.equal(a, b)
    W1 = spec.unflatten(a)[0][0]
    assert W1.std().item() == pytest.approx(math.sqrt(2 / 50), rel=0.03)  # Glorot normal
    scale = spec.fan_in_scale()
    assert scale.shape == (spec.num_params,)
    assert scale[0].item() == pytest.approx(1 / math.sqrt(20))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_dim": 0}, "in_dim"),
        ({"in_dim": 2, "widths": (4, 0)}, "widths"),
        ({"in_dim": 2, "activation": "gelu"}, "activation"),
        ({"in_dim": 2, "out_dim": 3}, "out_dim"),
    ],
)
def test_spec_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLPSpec(**kwargs)


def test_model_validation():
    spec = MLPSpec(2, (4,))
    with pytest.raises(ValueError, match="theta"):
        SampledNetworkModel(spec, torch.zeros(3, spec.num_params + 1, dtype=D))
    with pytest.raises(ValueError, match="noise_var"):
        SampledNetworkModel(spec, torch.zeros(3, spec.num_params, dtype=D), noise_var=[1.0, 2.0])
    with pytest.raises(ValueError, match="noise_var"):
        SampledNetworkModel(spec, torch.zeros(3, spec.num_params, dtype=D), noise_var=-1.0)


def test_posterior_moments_shapes_and_scale():
    model = _model(S=5, y_mean=10.0, y_std=3.0)
    X = torch.rand(7, 2, generator=_gen(1), dtype=D)
    raw = model.spec.forward(model.theta, X)  # 5 x 7 x 1, standardized
    post = model.posterior(X)
    assert isinstance(post, NetworkEnsemblePosterior)
    assert post.mean.shape == post.variance.shape == (7, 1)
    torch.testing.assert_close(post.mean, raw.mean(0) * 3.0 + 10.0)
    torch.testing.assert_close(post.variance, raw.var(0) * 9.0)  # unbiased, as botorch
    assert model(X).shape == (5, 7, 1)
    Xb = torch.rand(3, 4, 2, generator=_gen(2), dtype=D)
    post = model.posterior(Xb)
    assert post.mean.shape == (3, 4, 1)
    assert post.rsample(torch.Size([6])).shape == (6, 3, 4, 1)
    assert model.num_outputs == 1 and model.batch_shape == torch.Size()


def test_observation_noise_adds_member_noise():
    noise = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=D)
    model = _model(S=4, noise=noise, y_std=2.0)
    X = torch.rand(5, 2, generator=_gen(1), dtype=D)
    plain = model.posterior(X)
    noisy = model.posterior(X, observation_noise=True)
    torch.testing.assert_close(noisy.mean, plain.mean)
    torch.testing.assert_close(
        noisy.variance - plain.variance, torch.full((5, 1), 0.25 * 4.0, dtype=D)
    )
    # samples: member value plus N(0, member noise), from a fixed seed
    sampler = get_sampler(noisy, torch.Size([4000]), seed=0)
    s1, s2 = sampler(noisy), sampler(noisy)
    assert torch.equal(s1, s2)
    members = model(X)  # 4 x 5 x 1
    resid = s1 - members[sampler.base_samples]
    per_member = torch.stack([resid[sampler.base_samples == m].var() for m in range(4)])
    torch.testing.assert_close(per_member, noise * 4.0, rtol=0.1, atol=0)
    assert model.posterior(X, observation_noise=False).noise_var is None


def test_variance_head_is_the_aleatoric_part():
    model = _model(S=3, out_dim=2, y_std=2.0)
    X = torch.rand(5, 2, generator=_gen(1), dtype=D)
    raw = model.spec.forward(model.theta, X)
    head = torch.nn.functional.softplus(raw[..., 1:]) + 1e-6
    extra = model.posterior(X, observation_noise=True).variance - model.posterior(X).variance
    torch.testing.assert_close(extra, head.mean(0) * 4.0)
    torch.testing.assert_close(model.posterior(X).mean, raw[..., :1].mean(0) * 2.0)


def test_unsupported_posterior_options():
    model = _model()
    X = torch.rand(3, 2, dtype=D)
    with pytest.raises(UnsupportedError):
        model.posterior(X, observation_noise=torch.ones(3, 1, dtype=D))
    with pytest.raises(UnsupportedError):
        model.posterior(X, output_indices=[1])


def test_stratified_sampler_cycles_members_in_every_batch():
    model = _model(S=4)
    post = model.posterior(torch.rand(3, 2, 2, dtype=D))
    sampler = get_sampler(post, torch.Size([10]), seed=0)
    assert isinstance(sampler, StratifiedIndexSampler) and isinstance(sampler, IndexSampler)
    sampler(post)
    expected = (torch.arange(10) % 4)[:, None].expand(10, 3)
    assert torch.equal(sampler.base_samples, expected)
    small = get_sampler(post, torch.Size([2]), seed=0)
    small(post)
    assert small.base_samples[:, 0].tolist() == [0, 3]


def test_categorical_features_through_feature_map():
    cols = [Column("x", "continuous"), Column("c", "categorical", n_categories=3)]
    fmap = FeatureMap(cols)
    spec = MLPSpec(fmap.dim, (6,))
    model = SampledNetworkModel(spec, spec.init(2, _gen()), feature_map=fmap)
    X = torch.tensor([[0.3, 2.0], [0.3, 0.0]], dtype=D)
    onehot = torch.tensor([[0.3, 0, 0, 1], [0.3, 1, 0, 0]], dtype=D)
    torch.testing.assert_close(model(X), spec.forward(model.theta, onehot))


def test_qlognei_deterministic_with_gradients_and_pruning():
    torch.manual_seed(0)  # the acquisition optimizer's restarts
    model = _model(S=8, noise=0.01, y_mean=1.0, y_std=2.0)
    assert not supports_cache_root(model)
    Xb = torch.rand(12, 2, generator=_gen(4), dtype=D)
    domain = Domain(bounds=torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=D))
    context = AcquisitionContext(
        X_baseline=Xb,
        Y_baseline=model.posterior(Xb).mean,
        X_pending=Xb[:1] + 0.01,
        best_f=0.0,
        domain=domain,
        seed=3,
    )
    acqf = get_acquisition("qlognei").build(model, context)
    assert isinstance(acqf.sampler, StratifiedIndexSampler)
    assert acqf.X_baseline.shape[0] <= 12  # pruned to the points that can be best
    X = torch.rand(5, 1, 2, generator=_gen(5), dtype=D, requires_grad=True)
    value = acqf(X)
    assert torch.equal(value, acqf(X))
    value.sum().backward()
    assert torch.isfinite(X.grad).all() and X.grad.abs().sum() > 0
    settings = OptimizerSettings(num_restarts=2, raw_samples=32, maxiter=30)
    proposals = []
    for _ in range(2):
        torch.manual_seed(0)
        acqf = get_acquisition("qlognei").build(model, context)
        proposals.append(optimize_acquisition(acqf, domain, q=2, settings=settings))
    assert proposals[0].shape == (2, 2) and torch.isfinite(proposals[0]).all()
    torch.testing.assert_close(proposals[0], proposals[1], rtol=0, atol=0)
