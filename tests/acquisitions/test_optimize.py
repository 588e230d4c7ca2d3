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
