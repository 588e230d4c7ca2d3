"""``ts``: pathwise draws have the posterior's moments, one draw per point, seeded; ensembles
maximize one member; other models use candidate-set draws on finite domains only."""

import pytest
import torch
from botorch.models import MixedSingleTaskGP, ModelListGP, SingleTaskGP
from botorch.models.ensemble import EnsembleModel

from acquisitions import AcquisitionContext, Domain, UnsupportedModelError, get_acquisition
from acquisitions.discretize import discretization
from acquisitions.matrix import model_kind
from acquisitions.optimize import OptimizerSettings, optimize_acquisition
from acquisitions.thompson import CandidateDraws, EnsembleMemberDraws, PathDraws

SETTINGS = OptimizerSettings(num_restarts=4, raw_samples=128, maxiter=100)


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # small linear algebra; threads only oversubscribe shared cores
    yield
    torch.set_num_threads(previous)


def _data(n=12, seed=0, categorical=False):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 3, generator=g, dtype=torch.float64)
    if categorical:
        X[:, 2] = torch.randint(0, 3, (n,), generator=g).double()
    Y = (torch.sin(6 * X[:, 0]) + X[:, 1] - 0.3 * X[:, 2]).unsqueeze(-1)
    return X, Y


def _ctx(X, Y, domain, q=1, seed=11, pending=None):
    return AcquisitionContext(X, Y, pending, float(Y.max()), domain, seed=seed, q=q)


CONT = Domain(torch.tensor([[0.0] * 3, [1.0] * 3], dtype=torch.float64))
MIXED = Domain(
    torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 2.0]], dtype=torch.float64),
    categorical={2: [0.0, 1.0, 2.0]},
)


def _gp(categorical=False):
    X, Y = _data(categorical=categorical)
    if categorical:
        model = MixedSingleTaskGP(X, Y, cat_dims=[2])
    else:
        model = SingleTaskGP(X, Y)
    return model.eval(), X, Y


def _moments_match(acq, model, pts, var_rtol=0.3):
    with torch.no_grad():
        draws = acq._values(pts.unsqueeze(0)).squeeze(1)  # n_draws x k
        post = model.posterior(pts)
    mean, var = post.mean.reshape(-1), post.variance.reshape(-1)
    n = draws.shape[0]
    se = (var / n).sqrt()
    assert ((draws.mean(0) - mean).abs() < 4 * se).all(), (draws.mean(0), mean, se)
    torch.testing.assert_close(draws.var(0), var, rtol=var_rtol, atol=1e-8)


def test_random_feature_paths_have_the_posterior_moments():
    model, X, Y = _gp()
    assert model_kind(model) == "gp_rff"
    acq = get_acquisition("ts").build(model, _ctx(X, Y, CONT, q=512))
    assert isinstance(acq, PathDraws)
    pts = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.9, 0.1], [0.8, 0.4, 0.7]], dtype=torch.float64)
    _moments_match(acq, model, pts)


def test_inducing_paths_are_exact_posterior_draws_on_the_inducing_set():
    model, X, Y = _gp(categorical=True)
    assert model_kind(model) == "gp"
    ts = get_acquisition("ts", num_inducing=256)
    ctx = _ctx(X, Y, MIXED, q=512)
    acq = ts.build(model, ctx)
    assert isinstance(acq, PathDraws)
    Z = discretization(MIXED, 256, ctx.seed, include=X)
    # inducing points away from the data: exact Gaussian draws up to Monte Carlo error
    _moments_match(acq, model, Z[torch.tensor([3, 50, 120, 200])])
    # off the inducing set the kernel interpolation can only lose variance
    off = torch.tensor([[0.123, 0.777, 1.0], [0.61, 0.05, 2.0]], dtype=torch.float64)
    with torch.no_grad():
        draws = acq._values(off.unsqueeze(0)).squeeze(1)
        var = model.posterior(off).variance.reshape(-1)
    assert (draws.var(0) < 1.3 * var).all() and (draws.var(0) > 0.5 * var).all()


@pytest.mark.parametrize("categorical", [False, True])
def test_draws_are_seeded_differentiable_and_optimizable(categorical):
    model, X, Y = _gp(categorical)
    dom = MIXED if categorical else CONT
    a = get_acquisition("ts").build(model, _ctx(X, Y, dom, seed=3))
    b = get_acquisition("ts").build(model, _ctx(X, Y, dom, seed=3))
    c = get_acquisition("ts").build(model, _ctx(X, Y, dom, seed=4))
    x = discretization(dom, 16, 9).unsqueeze(1).requires_grad_(True)
    va = a(x)
    va.sum().backward()
    assert torch.isfinite(va).all() and torch.isfinite(x.grad).all()
    assert torch.equal(va.detach(), b(x.detach()))
    assert not torch.allclose(va.detach(), c(x.detach()))
    best = optimize_acquisition(a, dom, settings=SETTINGS)
    grid = discretization(dom, 1024, 5).unsqueeze(1)
    with torch.no_grad():  # the optimizer beats a dense grid on the same draw
        assert a(best.unsqueeze(0)).item() >= a(grid).max().item() - 1e-6


def test_each_point_of_a_batch_has_its_own_draw():
    model, X, Y = _gp()
    acq = get_acquisition("ts").build(model, _ctx(X, Y, CONT, q=2))
    x = torch.rand(5, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        draws = acq._values(x).squeeze(-1)  # 2 x 5
        torch.testing.assert_close(acq(x), draws[0])
        # a joint batch sums each point's own draw
        pair = torch.cat([x[:1], x[1:2]], dim=-2)
        torch.testing.assert_close(acq(pair), draws[0, :1] + draws[1, 1:2])
        # sequential optimization: one point added to the pending set -> draw 1
        acq.set_X_pending(x[0])
        torch.testing.assert_close(acq(x), draws[1])
        acq.set_X_pending(None)
    batch = optimize_acquisition(acq, CONT, q=2, settings=SETTINGS)
    assert batch.shape == (2, 3) and not torch.allclose(batch[0], batch[1])


class Members(EnsembleModel):
    """``S`` known functions: member ``s`` is ``-(x - c_s)^2`` summed over dims."""

    def __init__(self, centers, weights=None):
        super().__init__(weights=weights)
        self.centers = centers
        self._num_outputs = 1

    def forward(self, X):
        diff = X.unsqueeze(-3) - self.centers.unsqueeze(-2)
        return -(diff**2).sum(-1, keepdim=True)


def test_an_ensemble_maximizes_one_seeded_member():
    g = torch.Generator().manual_seed(0)
    centers = 0.1 + 0.8 * torch.rand(6, 3, generator=g, dtype=torch.float64)
    model = Members(centers)
    assert model_kind(model) == "ensemble"
    X = torch.rand(4, 3, generator=g, dtype=torch.float64)
    Y = torch.zeros(4, 1, dtype=torch.float64)
    acq = get_acquisition("ts").build(model, _ctx(X, Y, CONT, q=2, seed=5))
    assert isinstance(acq, EnsembleMemberDraws)
    again = get_acquisition("ts").build(model, _ctx(X, Y, CONT, q=2, seed=5))
    assert torch.equal(acq.members, again.members)
    batch = optimize_acquisition(acq, CONT, q=2, settings=SETTINGS)
    torch.testing.assert_close(batch, centers[acq.members], atol=1e-4, rtol=0)
    # member choice follows the ensemble's weights
    heavy = Members(centers, weights=torch.tensor([0, 0, 0, 1.0, 0, 0], dtype=torch.float64))
    chosen = get_acquisition("ts").build(heavy, _ctx(X, Y, CONT, q=3)).members
    assert chosen.tolist() == [3, 3, 3]


def test_other_models_get_candidate_set_draws_on_finite_domains_only():
    gp, X, Y = _gp()
    model = ModelListGP(gp)
    assert model_kind(model) == "other"
    cands = torch.rand(40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    finite = Domain(CONT.bounds, candidates=cands)
    acq = get_acquisition("ts").build(model, _ctx(X, Y, finite))
    assert isinstance(acq, CandidateDraws)
    best = optimize_acquisition(acq, finite, settings=SETTINGS)
    torch.testing.assert_close(best[0], acq.candidates[acq.samples[0].argmax()])
    exact = "donot_use_mm_for_euclid_dist"
    assert torch.cdist(acq.candidates, cands, compute_mode=exact).min(-1).values.max() == 0
    with torch.no_grad():  # points that are not candidates are never chosen
        assert acq(torch.full((1, 1, 3), 0.5, dtype=torch.float64)).item() == float("-inf")
    with pytest.raises(UnsupportedModelError, match="finite domains only"):
        get_acquisition("ts").build(model, _ctx(X, Y, CONT))


def test_options_are_validated():
    with pytest.raises(ValueError, match=r"num_features.*1023"):
        get_acquisition("ts", num_features=1023)
    with pytest.raises(ValueError, match=r"num_inducing.*0"):
        get_acquisition("ts", num_inducing=0)
    with pytest.raises(ValueError, match=r"max_candidates.*'many'"):
        get_acquisition("ts", max_candidates="many")
