import pytest
import torch
from botorch.acquisition import AcquisitionFunction

from acquisitions.base import Domain
from acquisitions.optimize import (
    MAX_ENUMERATED_COMBINATIONS,
    OptimizerSettings,
    choose_strategy,
    optimize_acquisition,
)

TARGET = torch.tensor([0.3, 0.7, 0.45, 2.0], dtype=torch.float64)


class Quadratic(AcquisitionFunction):
    """-(x - TARGET)^2 summed over dims and q: a known maximizer."""

    def __init__(self, target):
        super().__init__(model=None)
        self.target = target
        self.X_pending = None

    def forward(self, X):  # batch x q x d -> batch
        return -((X - self.target[: X.shape[-1]]) ** 2).sum(dim=(-1, -2))


def _bounds(d, upper=None):
    up = torch.ones(d, dtype=torch.float64) if upper is None else upper
    return torch.stack([torch.zeros(d, dtype=torch.float64), up])


def test_strategy_choice():
    cont = Domain(_bounds(3))
    assert choose_strategy(cont) == "continuous"
    small = Domain(_bounds(3), categorical={2: [0.0, 1.0, 2.0]})
    assert choose_strategy(small) == "mixed"
    many = [float(i) for i in range(MAX_ENUMERATED_COMBINATIONS + 1)]
    assert choose_strategy(Domain(_bounds(2), categorical={1: many})) == "alternating"
    grid = [i / 4 for i in range(5)]
    assert choose_strategy(Domain(_bounds(2), discrete={0: grid, 1: grid})) == "enumerate"
    cands = torch.rand(7, 2, dtype=torch.float64)
    assert choose_strategy(Domain(_bounds(2), candidates=cands)) == "candidates"


def test_continuous_finds_the_maximizer():
    X = optimize_acquisition(Quadratic(TARGET), Domain(_bounds(3)), settings=OptimizerSettings())
    assert X.shape == (1, 3)
    assert torch.allclose(X[0], TARGET[:3], atol=1e-4)


def test_integer_and_categorical_columns_take_admissible_values():
    grid = [i / 3 for i in range(4)]  # Int(0, 3) encoded
    dom = Domain(
        _bounds(4, torch.tensor([1.0, 1.0, 1.0, 3.0], dtype=torch.float64)),
        discrete={1: grid},
        categorical={3: [0.0, 1.0, 2.0, 3.0]},
    )
    X = optimize_acquisition(Quadratic(TARGET), dom)
    assert X[0, 0].item() == pytest.approx(0.3, abs=1e-4)
    assert X[0, 1].item() == pytest.approx(2 / 3)  # the grid point nearest 0.7
    assert X[0, 2].item() == pytest.approx(0.45, abs=1e-4)
    assert X[0, 3].item() == 2.0


def test_enumeration_avoids_given_points_and_respects_bounds():
    grid = [i / 4 for i in range(5)]
    dom = Domain(_bounds(2), discrete={0: grid, 1: grid})
    best = torch.tensor([[0.25, 0.75]], dtype=torch.float64)
    X = optimize_acquisition(Quadratic(TARGET), dom)
    assert torch.equal(X, best)
    X2 = optimize_acquisition(Quadratic(TARGET), dom, avoid=best)
    assert not torch.equal(X2, best)
    assert ((X2 >= 0) & (X2 <= 1)).all()


def test_batch_of_candidates_is_distinct():
    cands = torch.tensor([[0.3, 0.7], [0.31, 0.69], [0.9, 0.1], [0.0, 0.0]], dtype=torch.float64)
    X = optimize_acquisition(Quadratic(TARGET), Domain(_bounds(2), candidates=cands), q=2)
    assert X.shape == (2, 2)
    assert len({tuple(r) for r in X.tolist()}) == 2


# --- large categorical (Text) columns, finite candidate sets -------------------------------
class CodeTable(AcquisitionFunction):
    """Value table[code] - (x - 0.3)^2 * (1 + |slope[code]|): a known best code and x."""

    def __init__(self, table, slope):
        super().__init__(model=None)
        self.table, self.slope = table, slope
        self.X_pending = None

    def forward(self, X):  # batch x q x d (code, x) -> batch
        code = X[..., 0].round().long()
        return (self.table[code] - (X[..., 1] - 0.3) ** 2 * (1 + self.slope[code].abs())).sum(-1)


def _text_domain(m, with_x=True):
    upper = torch.tensor([m - 1.0, 1.0] if with_x else [m - 1.0], dtype=torch.float64)
    return Domain(_bounds(len(upper), upper), categorical={0: [float(i) for i in range(m)]})


def test_strategy_for_large_categorical_columns():
    from acquisitions.optimize import LARGE_CATEGORICAL, MAX_ENUMERATED_LARGE

    m = LARGE_CATEGORICAL + 1
    assert choose_strategy(_text_domain(m)) == "coordinate"  # with a continuous column
    assert choose_strategy(_text_domain(30_000, with_x=False)) == "enumerate"
    up = torch.tensor([999.0, 200.0], dtype=torch.float64)
    too_many = Domain(
        _bounds(2, up),
        categorical={0: [float(i) for i in range(1000)], 1: list(map(float, range(201)))},
    )
    assert 1000 * 201 > MAX_ENUMERATED_LARGE and choose_strategy(too_many) == "coordinate"
    small = Domain(_bounds(2), categorical={0: [float(i) for i in range(LARGE_CATEGORICAL)]})
    assert choose_strategy(small) == "alternating"  # botorch's, as before


def test_coordinate_search_finds_the_best_code_and_continuous_value():
    g = torch.Generator().manual_seed(0)
    m = 3000
    table, slope = (
        torch.randn(m, generator=g, dtype=torch.float64),
        torch.randn(m, generator=g, dtype=torch.float64),
    )
    acqf = CodeTable(table, slope)
    s = OptimizerSettings(num_restarts=3, raw_samples=64, maxiter=50, candidate_subset=m)
    X = optimize_acquisition(acqf, _text_domain(m), settings=s, seed=0)
    assert int(X[0, 0]) == int(table.argmax())
    assert X[0, 1].item() == pytest.approx(0.3, abs=1e-4)
    # seeded: the same answer again
    assert torch.equal(optimize_acquisition(acqf, _text_domain(m), settings=s, seed=0), X)
    # q=2 gives two distinct codes, although CodeTable ignores its pending points (the
    # greedy second step re-found the first pick: two identical rows), and the second
    # code is the best of the rest with its own best x
    X2 = optimize_acquisition(acqf, _text_domain(m), q=2, settings=s, seed=0)
    assert X2.shape == (2, 2)
    assert torch.equal(X2[0], X[0])
    second = int(table.topk(2).indices[1])
    assert int(X2[1, 0]) == second != int(X2[0, 0])
    assert X2[1, 1].item() == pytest.approx(0.3, abs=1e-4)


def test_coordinate_search_scores_a_subset_of_a_large_column():
    g = torch.Generator().manual_seed(1)
    m = 5000
    table, slope = (
        torch.randn(m, generator=g, dtype=torch.float64),
        torch.zeros(m, dtype=torch.float64),
    )
    calls = []

    class Counted(CodeTable):
        def forward(self, X):
            calls.append(X.shape[0])
            return super().forward(X)

    s = OptimizerSettings(num_restarts=2, raw_samples=32, maxiter=20, candidate_subset=100)
    X = optimize_acquisition(Counted(table, slope), _text_domain(m), settings=s, seed=0)
    assert max(calls) <= 2 * 100  # never all 5,000 codes at once
    assert table[int(X[0, 0])] > torch.quantile(table, 0.95)  # still a good code


def test_coordinate_search_excludes_tried_points_without_continuous_columns():
    m1, m2 = 1000, 201  # beyond MAX_ENUMERATED_LARGE: coordinate search, fully discrete
    up = torch.tensor([m1 - 1.0, m2 - 1.0], dtype=torch.float64)
    dom = Domain(
        _bounds(2, up),
        categorical={0: [float(i) for i in range(m1)], 1: [float(i) for i in range(m2)]},
    )

    class Peak(AcquisitionFunction):
        def __init__(self):
            super().__init__(model=None)
            self.X_pending = None

        def forward(self, X):
            return -((X[..., 0] - 500) ** 2 + (X[..., 1] - 100) ** 2).sum(-1)

    s = OptimizerSettings(num_restarts=2, raw_samples=64, candidate_subset=m1)
    best = torch.tensor([[500.0, 100.0]], dtype=torch.float64)
    assert torch.equal(optimize_acquisition(Peak(), dom, settings=s, seed=0), best)
    X = optimize_acquisition(Peak(), dom, settings=s, seed=0, avoid=best)
    assert not torch.equal(X, best) and ((X - best).abs().sum() == 1)  # a next-best neighbour
    again = OptimizerSettings(
        num_restarts=2, raw_samples=64, candidate_subset=m1, allow_repeats=True
    )
    assert torch.equal(optimize_acquisition(Peak(), dom, settings=again, seed=0, avoid=best), best)


def test_finite_candidates_exclusion_subset_and_exhaustion():
    from acquisitions.optimize import CandidatesExhaustedWarning, finite_candidates

    m = 50
    dom = _text_domain(m, with_x=False)
    tried = torch.tensor([[3.0], [7.0], [11.0]], dtype=torch.float64)
    left = finite_candidates(dom, avoid=tried).candidates
    assert left.shape == (47, 1) and not set(left[:, 0].tolist()) & {3.0, 7.0, 11.0}
    every = finite_candidates(dom, avoid=tried, settings=OptimizerSettings(allow_repeats=True))
    assert every.candidates.shape == (50, 1)
    s = OptimizerSettings(candidate_subset=10)
    a = finite_candidates(dom, avoid=tried, settings=s, seed=5).candidates
    b = finite_candidates(dom, avoid=tried, settings=s, seed=5).candidates
    c = finite_candidates(dom, avoid=tried, settings=s, seed=6).candidates
    assert a.shape == (10, 1) and torch.equal(a, b) and not torch.equal(a, c)
    assert not set(a[:, 0].tolist()) & {3.0, 7.0, 11.0}
    all_tried = torch.arange(m, dtype=torch.float64).unsqueeze(-1)
    with pytest.warns(CandidatesExhaustedWarning):
        back = finite_candidates(dom, avoid=all_tried).candidates
    assert back.shape == (50, 1)
    cont = Domain(_bounds(2))
    assert finite_candidates(cont, avoid=tried) is cont  # not finite: unchanged
    with pytest.raises(ValueError, match="candidate_subset"):
        OptimizerSettings(candidate_subset=0)


def test_coordinate_search_with_an_analytic_acquisition():
    """Analytic acquisitions (no X_pending attribute) work on Text + Float domains."""
    from botorch.acquisition import LogExpectedImprovement
    from botorch.models import SingleTaskGP

    g = torch.Generator().manual_seed(0)
    m = 40
    X = torch.stack([torch.arange(0, m, 4).double(), torch.rand(10, generator=g).double()], -1)
    Y = (X[:, :1] / m) - (X[:, 1:] - 0.3) ** 2
    model = SingleTaskGP(X / torch.tensor([m - 1.0, 1.0], dtype=torch.float64), Y)
    acqf = LogExpectedImprovement(model, best_f=Y.max())
    assert not hasattr(acqf, "X_pending")
    X_new = optimize_acquisition(
        acqf, _text_domain(m), settings=OptimizerSettings(2, 32, 20), seed=0
    )
    assert X_new.shape == (1, 2) and float(X_new[0, 0]).is_integer()


@pytest.mark.parametrize("name", ["screen_iterations", "survivors"])
@pytest.mark.parametrize("value", [0, -2, 1.5, True])
def test_screening_settings_are_validated(name, value):
    with pytest.raises(ValueError, match=name):
        OptimizerSettings(**{name: value})


def test_screened_multistart_finds_what_every_restart_to_convergence_finds():
    # Branin-like multimodal posterior mean: screening keeps the restarts that matter.
    from botorch.acquisition.analytic import PosteriorMean
    from botorch.models import SingleTaskGP

    g = torch.Generator().manual_seed(4)
    X = torch.rand(40, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(6 * X[:, :1]) * torch.cos(4 * X[:, 1:]) + X[:, :1]
    acqf = PosteriorMean(SingleTaskGP(X, Y).eval())
    domain = Domain(torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64))
    found = {}
    for screen in (None, 10):
        torch.manual_seed(0)
        s = OptimizerSettings(screen_iterations=screen)
        x = optimize_acquisition(acqf, domain, settings=s)
        with torch.no_grad():
            found[screen] = acqf(x.unsqueeze(0))
    torch.testing.assert_close(found[10], found[None], rtol=0, atol=1e-6)


# --- batches are distinct on domains with discrete columns ---------------------------


class IgnoresPending(AcquisitionFunction):
    """A fixed surface that does not look at X_pending: a greedy batch re-finds its maximum."""

    def __init__(self, target):
        super().__init__(model=None)
        self.target = target
        self.X_pending = None
        self.pending_seen = []

    def set_X_pending(self, X_pending=None):
        self.X_pending = X_pending
        self.pending_seen.append(None if X_pending is None else X_pending.shape[0])

    def forward(self, X):  # batch x q x d -> batch
        return -((X - self.target[: X.shape[-1]]) ** 2).sum(dim=(-1, -2))


def _distinct_rows(X):
    return len({tuple(round(v, 9) for v in row) for row in X.tolist()}) == X.shape[0]


@pytest.mark.parametrize(
    ("domain", "strategy"),
    [
        # few combinations with a continuous column: botorch's optimize_acqf_mixed
        (
            Domain(
                _bounds(2, torch.tensor([1.0, 2.0], dtype=torch.float64)),
                categorical={1: [0.0, 1.0, 2.0]},
            ),
            "mixed",
        ),
        # many combinations with continuous columns: botorch's alternating search
        (
            Domain(
                _bounds(3, torch.tensor([1.0, 11.0, 1.0], dtype=torch.float64)),
                categorical={1: [float(i) for i in range(12)]},
            ),
            "alternating",
        ),
        # fully discrete beyond enumeration: alternating, no continuous column
        (
            Domain(
                _bounds(3, torch.tensor([19.0, 19.0, 19.0], dtype=torch.float64)),
                categorical={i: [float(j) for j in range(20)] for i in range(3)},
            ),
            "alternating",
        ),
        # a large categorical with a continuous column: coordinate search
        (_text_domain(200), "coordinate"),
        # fully discrete, enumerated
        (Domain(_bounds(2), discrete={0: [i / 4 for i in range(5)], 1: [0.0, 1.0]}), "enumerate"),
    ],
    ids=["mixed", "alternating", "alternating-discrete", "coordinate", "enumerate"],
)
def test_a_batch_over_a_discrete_domain_has_distinct_rows(domain, strategy):
    assert choose_strategy(domain) == strategy
    acqf = IgnoresPending(torch.tensor([0.3, 1.0, 0.45], dtype=torch.float64))
    s = OptimizerSettings(num_restarts=2, raw_samples=32, maxiter=30)
    torch.manual_seed(0)
    single = optimize_acquisition(acqf, domain, q=1, settings=s, seed=0)
    torch.manual_seed(0)
    X = optimize_acquisition(acqf, domain, q=3, settings=s, seed=0)
    assert X.shape == (3, domain.dim)
    assert _distinct_rows(X), X
    # the first pick is the single-point answer; the pending points are restored
    torch.testing.assert_close(X[0], single[0], atol=1e-4, rtol=0)
    assert acqf.X_pending is None
    for c, values in {**domain.discrete, **domain.categorical}.items():
        assert set(X[:, c].tolist()) <= set(values)


def test_a_batch_larger_than_the_discrete_combinations_still_returns_q_points():
    # two combinations, q=3: the third point repeats a combination (new x if the
    # acquisition uses its pending points; this one does not, so x may repeat too)
    dom = Domain(_bounds(2), categorical={1: [0.0, 1.0]})
    acqf = IgnoresPending(torch.tensor([0.3, 1.0], dtype=torch.float64))
    s = OptimizerSettings(num_restarts=2, raw_samples=32, maxiter=30)
    X = optimize_acquisition(acqf, dom, q=3, settings=s, seed=0)
    assert X.shape == (3, 2)
    assert sorted(X[:2, 1].tolist()) == [0.0, 1.0]
