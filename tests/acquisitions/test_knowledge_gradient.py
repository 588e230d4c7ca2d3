"""``kg``: the expected maximum of lines exactly, the discrete KG against fantasized models,
the one-shot form on continuous domains, refusals."""

import pytest
import torch
from botorch.acquisition.knowledge_gradient import qKnowledgeGradient
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.ensemble import EnsembleModel
from botorch.optim import optimize_acqf
from botorch.sampling.normal import SobolQMCNormalSampler

from acquisitions import AcquisitionContext, Domain, UnsupportedModelError, get_acquisition
from acquisitions.knowledge_gradient import (
    DiscreteKnowledgeGradient,
    KnowledgeGradient,
    _expected_max_affine,
    expected_max_affine,
)
from acquisitions.optimize import OptimizerSettings, optimize_acquisition

SETTINGS = OptimizerSettings(num_restarts=2, raw_samples=64, maxiter=50)


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # small linear algebra; threads only oversubscribe shared cores
    yield
    torch.set_num_threads(previous)


CONT = Domain(torch.tensor([[0.0] * 2, [1.0] * 2], dtype=torch.float64))
MIXED = Domain(
    torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 2.0]], dtype=torch.float64),
    categorical={2: [0.0, 1.0, 2.0]},
)


def _gp(d=2, n=10, noise=True, categorical=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64)
    if categorical:
        X[:, -1] = torch.randint(0, 3, (n,), generator=g).double()
    Y = torch.sin(5 * X[:, :1]) + X[:, 1:2] + 0.1 * torch.randn(n, 1, generator=g).double()
    if categorical:
        model = MixedSingleTaskGP(X, Y, cat_dims=[d - 1])
    else:
        model = SingleTaskGP(X, Y)
    if not noise:
        model.likelihood.noise = 1e-4
    return model.eval(), X, Y


def _ctx(X, Y, domain, q=1, pending=None, seed=3):
    return AcquisitionContext(X, Y, pending, float(Y.max()), domain, seed=seed, q=q)


def test_expected_max_of_lines_is_exact():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 9, generator=g, dtype=torch.float64)
    b = torch.randn(4, 9, generator=g, dtype=torch.float64)
    a[0, 3], b[0, 3] = a[0, 5], b[0, 5]  # a duplicated line
    b[1, 2] = b[1, 7]  # parallel lines
    b[2] = 0.0  # all flat: no gain
    z = torch.randn(400_000, 1, 1, generator=g, dtype=torch.float64)
    samples = (a + b * z).max(-1).values - a.max(-1).values
    mc, se = samples.mean(0), samples.std(0) / 400_000**0.5
    exact = expected_max_affine(a, b)
    assert ((exact - mc).abs() <= 3 * se + 1e-12).all()
    assert exact[2].item() == 0.0
    # pruning the lines that are never highest within 8 standard deviations changes nothing
    torch.testing.assert_close(exact, _expected_max_affine(a, b).clamp_min(0), rtol=1e-12, atol=0)
    # two lines: E[max(0, bZ)] = |b| phi(0)
    two = expected_max_affine(torch.zeros(1, 2, dtype=torch.float64), torch.tensor([[0.0, 2.0]]))
    assert two.item() == pytest.approx(2.0 / (2 * torch.pi) ** 0.5, rel=1e-12)


def test_discrete_kg_matches_fantasized_posterior_means():
    """KG(x) = E[max mu_{n+1}(A + x)] - max mu_n(A + x), by fantasizing y(x) directly."""
    model, X, Y = _gp()
    A = torch.rand(30, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    kg = DiscreteKnowledgeGradient(model, A)
    grid = torch.rand(256, 1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        values = kg(grid)
    x = grid[values.argsort()[-20]]  # a point with a clearly positive value
    value = kg(x.unsqueeze(0)).item()
    assert value > 1e-3
    pts = torch.cat([A, x])
    sampler = SobolQMCNormalSampler(torch.Size([4096]), seed=0)
    with torch.no_grad():
        fantasy = model.fantasize(x, sampler)
        after = fantasy.posterior(pts).mean.squeeze(-1).max(-1).values  # 4096 x 1
        before = model.posterior(pts).mean.max()
    # fantasize works on Y's scale: divide by the standardization's scale
    gain = (after - before).reshape(-1) / model.outcome_transform.stdvs.reshape(())
    se = gain.std() / 4096**0.5
    assert abs(value - gain.mean().item()) < 3 * se.item() + 1e-9


def test_discrete_kg_gradients_are_finite_and_values_non_negative():
    model, X, Y = _gp(d=3, categorical=True)
    acq = get_acquisition("kg").build(model, _ctx(X, Y, MIXED))
    assert isinstance(acq, DiscreteKnowledgeGradient)
    x = torch.rand(32, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x[..., 2] = (3 * x[..., 2]).floor()
    x.requires_grad_(True)
    v = acq(x)
    v.sum().backward()
    assert torch.isfinite(v).all() and (v >= 0).all() and (v > 0).any()
    assert torch.isfinite(x.grad).all()
    best = optimize_acquisition(acq, MIXED, settings=SETTINGS)
    assert best[0, 2].item() in (0.0, 1.0, 2.0)
    assert acq(best.unsqueeze(0)).item() >= v.max().item() - 1e-9


def test_pending_points_are_believed_at_their_mean():
    model, X, Y = _gp()
    A = torch.rand(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    free = DiscreteKnowledgeGradient(model, A)
    grid = torch.rand(256, 1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        P = grid[free(grid).argmax()]
        acq = DiscreteKnowledgeGradient(model, A, X_pending=P)
        # once P is (believed) observed, observing it again is worth much less
        assert acq(P.unsqueeze(0)).item() < 0.5 * free(P.unsqueeze(0)).item()
        # believed at the posterior mean: the best current mean is unchanged
        torch.testing.assert_close(acq._mu_A, free._mu_A)
        # the optimizer's sequential steps reset the pending set
        acq.set_X_pending(None)
        torch.testing.assert_close(acq(grid), free(grid))


def test_one_shot_on_continuous_domains_optimizes_the_augmented_batch():
    model, X, Y = _gp()
    ctx = _ctx(X, Y, CONT)
    kg = get_acquisition("kg", num_fantasies=16)
    assert KnowledgeGradient.one_shot_applies(ctx)
    acq = kg.build(model, ctx)
    assert isinstance(acq, qKnowledgeGradient) and acq.num_fantasies == 16
    best = optimize_acquisition(acq, CONT, settings=SETTINGS)
    assert best.shape == (1, 2) and ((best >= 0) & (best <= 1)).all()
    # the optimizer handles the augmented batch (candidate + 16 fantasy maximizers): its
    # value beats the uninformed tree with every fantasy at the best current mean
    with torch.random.fork_rng():
        torch.manual_seed(0)  # optimize_acqf draws its raw samples from the global stream
        full, value = optimize_acqf(
            acq, CONT.bounds, q=1, num_restarts=4, raw_samples=256, return_full_tree=True
        )
    assert full.shape == (17, 2) and torch.isfinite(value).all()
    grid = torch.rand(2048, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        x_star = grid[model.posterior(grid).mean.argmax()]
        uninformed = acq(torch.cat([full[:1], x_star.expand(16, 2)]).unsqueeze(0))
    assert value.item() >= uninformed.item() - 1e-6
    # batches and discrete domains use the discrete form
    assert isinstance(kg.build(model, _ctx(X, Y, CONT, q=2)), DiscreteKnowledgeGradient)


def test_refuses_models_that_cannot_fantasize():
    class Members(EnsembleModel):
        def forward(self, X):
            return X.sum(-1, keepdim=True).unsqueeze(-3).expand(*X.shape[:-2], 3, X.shape[-2], 1)

    model = Members()
    model._num_outputs = 1
    X = torch.rand(4, 2, dtype=torch.float64)
    with pytest.raises(UnsupportedModelError, match="fantasize"):
        get_acquisition("kg").build(model, _ctx(X, X[:, :1], CONT))


def test_options_are_validated():
    with pytest.raises(ValueError, match=r"num_fantasies.*0"):
        get_acquisition("kg", num_fantasies=0)
    with pytest.raises(ValueError, match=r"num_discrete.*-3"):
        get_acquisition("kg", num_discrete=-3)
