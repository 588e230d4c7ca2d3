import math

import pytest
import torch

from surrogates import Column, get_surrogate, register_surrogate
from surrogates.auto import (
    AutoSurrogate,
    held_out_log_density,
    sign_test_choice,
    sign_test_p_value,
)
from surrogates.base import _REGISTRY
from surrogates.gp import GPSurrogate


class BlurredGP(GPSurrogate):
    """A deliberately poor surrogate: a GP that calls almost everything noise."""

    def __init__(self, **kwargs):
        super().__init__(min_noise=10.0, **kwargs)


@pytest.fixture(autouse=True)
def _blurred_gp_registered():
    """Register the poor surrogate for these tests only (the registry is global)."""
    register_surrogate("blurred_gp_for_tests")(BlurredGP)
    yield
    _REGISTRY.pop("blurred_gp_for_tests", None)


def test_sign_test_p_value_is_the_binomial_tail():
    assert sign_test_p_value(12, 15) == pytest.approx((455 + 105 + 15 + 1) / 2**15, rel=1e-12)
    assert sign_test_p_value(11, 15) == pytest.approx((1365 + 576) / 2**15, rel=1e-12)
    assert sign_test_p_value(0, 7) == 1.0 and sign_test_p_value(7, 7) == 0.5**7


def _points(wins, m, gain=0.5, loss=-0.5):
    """Paired densities: the candidate beats zero on the first ``wins`` of ``m`` points."""
    return torch.tensor([gain] * wins + [loss] * (m - wins), dtype=torch.float64)


def test_sign_test_choice_needs_most_points_not_a_large_mean():
    base = torch.zeros(15, dtype=torch.float64)
    # 11 of 15 wins: p = 0.059 > 0.05, the default stays; 12 of 15: p = 0.018, it goes
    choice, wins = sign_test_choice({"gp": base, "b": _points(11, 15)}, "gp")
    assert choice == "gp" and wins == {"gp": 0.5, "b": pytest.approx(11 / 15)}
    assert sign_test_choice({"gp": base, "b": _points(12, 15)}, "gp")[0] == "b"
    # a huge mean gain from the default's overconfident misses on 3 points does not count
    outliers = _points(3, 15, gain=300.0)
    assert (
        float(outliers.mean()) > 50
        and sign_test_choice({"gp": base, "b": outliers}, "gp")[0] == "gp"
    )
    # several qualifiers: the one with the most wins
    both = {"gp": base, "b": _points(12, 15), "c": _points(14, 15, gain=0.1)}
    assert sign_test_choice(both, "gp")[0] == "c"
    # a failed candidate (-inf) loses those points; a failed default loses everywhere
    failed = {"gp": base, "b": base - math.inf}
    assert sign_test_choice(failed, "gp")[0] == "gp"
    dead = {
        "gp": base - math.inf,
        "b": base - 1.0,
        "c": torch.cat([base[:10] - 1, base[10:] - math.inf]),
    }
    assert sign_test_choice(dead, "gp")[0] == "b"


def test_sign_test_choice_compares_with_the_incumbent():
    base = torch.zeros(25, dtype=torch.float64)
    scores = {"gp": base, "b": _points(15, 25), "c": _points(10, 25)}  # b: p = 0.21
    assert sign_test_choice(scores, "gp")[0] == "gp"
    assert sign_test_choice(scores, "gp", alpha=0.25)[0] == "b"
    # once b is in force, gp (which loses 15 of 25 points to b) has to beat b to return
    back = {"gp": _points(10, 25), "b": base, "c": _points(20, 25)}  # c vs b: p = 0.002
    assert sign_test_choice({"gp": back["gp"], "b": base}, "b")[0] == "b"
    choice, wins = sign_test_choice(back, "b")
    assert choice == "c" and wins == {"b": 0.5, "gp": 0.4, "c": 0.8}


COLS = [Column("a", "continuous"), Column("b", "continuous")]


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=g, dtype=torch.float64)
    Y = torch.sin(5 * X[:, :1]) * 10 + X[:, 1:] ** 2 * 5
    return X, Y


def test_held_out_log_density_is_the_gaussian_log_density():
    X, Y = _data(20)
    model = GPSurrogate().fit(X[:15], Y[:15], COLS, seed=0)
    post = model.posterior(X[15:], observation_noise=True)
    m, v = post.mean.detach().reshape(-1), post.variance.detach().reshape(-1)
    expected = torch.distributions.Normal(m, v.sqrt()).log_prob(Y[15:].reshape(-1)).mean()
    assert held_out_log_density(model, X[15:], Y[15:]) == pytest.approx(float(expected), rel=1e-9)


def test_pointwise_log_density_of_outcomes_too_large_to_square_is_minus_inf():
    # the variance floor (1e-12 max |y|)**2 overflowed to an OverflowError from 1e166
    from types import SimpleNamespace

    from surrogates.auto import pointwise_log_density

    class Unit:
        def posterior(self, X, observation_noise=False):
            ones = torch.ones(X.shape[0], 1, dtype=torch.float64)
            return SimpleNamespace(mean=0 * ones, variance=ones)

    X = torch.zeros(2, 1, dtype=torch.float64)
    lpd = pointwise_log_density(Unit(), X, torch.tensor([[1e200], [1.0]], dtype=torch.float64))
    assert lpd.tolist() == [-math.inf, -math.inf]  # no variance on that scale is finite
    lpd = pointwise_log_density(Unit(), X, torch.tensor([[0.0], [1.0]], dtype=torch.float64))
    assert lpd.tolist() == pytest.approx(
        [-0.5 * math.log(2 * math.pi), -0.5 * math.log(2 * math.pi) - 0.5]
    )


def test_auto_picks_the_better_surrogate_and_keeps_the_choice_between_refreshes():
    X, Y = _data(20)
    auto = AutoSurrogate(candidates=["blurred_gp_for_tests", "gp"], refresh_every=5)
    model = auto.fit(X, Y, COLS, seed=0)
    assert auto.last_used == "gp"
    assert auto.last_scores["gp"] > auto.last_scores["blurred_gp_for_tests"] + 1.0
    assert model.posterior(X).mean.shape == (20, 1)
    state = auto.last_state
    assert state["choice"] == "gp" and state["chosen_at"] == 20 and "state" in state
    # three more points: below refresh_every, the stored choice is kept without scoring
    X2, Y2 = _data(23)
    fresh = AutoSurrogate(candidates=["blurred_gp_for_tests", "gp"], refresh_every=5)
    fresh.scores = lambda *a: pytest.fail("the choice should not be refreshed yet")
    fresh.fit(X2, Y2, COLS, seed=1, init=state)
    assert fresh.last_used == "gp" and fresh.last_state["chosen_at"] == 20
    # few points: the first candidate, no cross-validation
    small = AutoSurrogate(candidates=["blurred_gp_for_tests", "gp"], min_points=6)
    small.fit(X[:4], Y[:4], COLS, seed=0)
    assert small.last_used == "blurred_gp_for_tests" and small.last_scores is None


def _auto_run(seed):
    from bayesopt import Float, Optimizer

    opt = Optimizer(
        {"x": Float(0, 1), "y": Float(0, 1)},
        surrogate="auto",
        surrogate_options={"candidates": ["gp", "blurred_gp_for_tests"], "min_points": 4},
        n_initial=4,
        seed=seed,
    )
    for _ in range(7):
        t = opt.ask()
        opt.tell(t.id, math.sin(5 * t.params["x"]) + t.params["y"] ** 2)
    return opt.trials


def _fingerprint(trials):
    """What must repeat: each point, its value, and what auto chose and why."""
    return [
        (
            t.params,
            t.value,
            t.attrs.get("source"),
            t.attrs.get("surrogate_used"),
            t.attrs.get("model_state"),  # choice, held-out scores, wins, fitted state
        )
        for t in trials
    ]


def test_auto_is_reproducible_and_records_its_choice_in_trials():
    first, again, other = _auto_run(0), _auto_run(0), _auto_run(1)
    model_trials = [t for t in first if t.attrs.get("surrogate") == "auto"]
    assert len(model_trials) == 3
    assert all(t.attrs["surrogate_used"] in ("gp", "blurred_gp_for_tests") for t in model_trials)
    assert all(
        set(t.attrs["model_state"]["scores"]) == {"gp", "blurred_gp_for_tests"}
        for t in model_trials
    )
    # the same seed gives the same proposals, bit for bit, and the same choices
    assert _fingerprint(again) == _fingerprint(first)
    # ... and the comparison can fail: another seed proposes other points
    assert [t.params for t in other] != [t.params for t in first]


def test_bad_options_name_the_parameter():
    with pytest.raises(ValueError, match=r"candidates.*'nope'"):
        AutoSurrogate(candidates=["gp", "nope"])
    with pytest.raises(ValueError, match=r"candidates.*'auto'"):
        AutoSurrogate(candidates=["auto"])
    with pytest.raises(ValueError, match=r"folds.*1"):
        AutoSurrogate(folds=1)
    with pytest.raises(ValueError, match=r"alpha.*1.5"):
        AutoSurrogate(alpha=1.5)
    with pytest.raises(ValueError, match=r"candidate_options.*ibnn"):
        AutoSurrogate(candidates=["gp"], candidate_options={"ibnn": {}})
    assert isinstance(get_surrogate("auto"), AutoSurrogate)
