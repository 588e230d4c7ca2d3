import math

import pytest
import torch

from surrogates import Column, get_surrogate, register_surrogate
from surrogates.auto import AutoSurrogate, held_out_log_density, one_standard_error_choice
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


def test_one_standard_error_rule_keeps_the_default_without_clear_evidence():
    base = torch.tensor([0.0, 0.0, 0.0, 0.0])
    noisy_gain = {"gp": base, "b": torch.tensor([2.0, -1.5, 1.0, -1.0])}  # mean 0.125, se 0.8
    assert one_standard_error_choice(noisy_gain, "gp") == "gp"
    clear_gain = {"gp": base, "b": torch.tensor([0.5, 0.6, 0.4, 0.5]), "c": base + 0.3}
    assert one_standard_error_choice(clear_gain, "gp") == "b"  # best mean among qualifiers
    failed_default = {"gp": base - math.inf, "b": base - 1.0, "c": base - 2.0}
    assert one_standard_error_choice(failed_default, "gp") == "b"
    assert one_standard_error_choice({"gp": base, "b": base - math.inf}, "gp") == "gp"


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


def test_auto_is_reproducible_and_records_its_choice_in_trials():
    from bayesopt import Float, Optimizer

    opt = Optimizer(
        {"x": Float(0, 1), "y": Float(0, 1)},
        surrogate="auto",
        surrogate_options={"candidates": ["gp", "blurred_gp_for_tests"], "min_points": 4},
        n_initial=4,
        seed=0,
    )
    for _ in range(7):
        t = opt.ask()
        opt.tell(t.id, math.sin(5 * t.params["x"]) + t.params["y"] ** 2)
    model_trials = [t for t in opt.trials if t.attrs.get("surrogate") == "auto"]
    assert len(model_trials) == 3
    assert all(t.attrs["surrogate_used"] in ("gp", "blurred_gp_for_tests") for t in model_trials)


def test_bad_options_name_the_parameter():
    with pytest.raises(ValueError, match=r"candidates.*'nope'"):
        AutoSurrogate(candidates=["gp", "nope"])
    with pytest.raises(ValueError, match=r"candidates.*'auto'"):
        AutoSurrogate(candidates=["auto"])
    with pytest.raises(ValueError, match=r"folds.*1"):
        AutoSurrogate(folds=1)
    with pytest.raises(ValueError, match=r"candidate_options.*ibnn"):
        AutoSurrogate(candidates=["gp"], candidate_options={"ibnn": {}})
    assert isinstance(get_surrogate("auto"), AutoSurrogate)
