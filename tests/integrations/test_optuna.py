"""BayesOptSampler inside Optuna.

Optuna ships its sampler conformance suite in ``optuna.testing.pytest_samplers``
(the classes its own ``tests/samplers_tests/test_samplers.py`` parametrizes
every sampler with). The three single-objective classes run here unchanged
against ``BayesOptSampler`` by subclassing them and providing the ``sampler``
fixture they expect; nothing of Optuna's test code is copied. Run only them with
``pytest tests/integrations/test_optuna.py -k Conformance``.
"""

from __future__ import annotations

import math
import statistics
import sys
import time

import pytest

optuna = pytest.importorskip("optuna")

from optuna.testing.pytest_samplers import (  # noqa: E402
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)

from bayesopt.integrations.optuna import BayesOptSampler, to_parameter  # noqa: E402
from bayesopt.space import Categorical, Float, Int  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _fast_settings():
    from acquisitions.optimize import OptimizerSettings

    return OptimizerSettings(num_restarts=2, raw_samples=64, maxiter=50)


class TestConformance(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    """Optuna's own single-objective sampler tests, with the model used from the first trial."""

    @pytest.fixture
    def sampler(self):
        return lambda: BayesOptSampler(
            n_startup_trials=0, seed=0, optimizer_settings=_fast_settings()
        )


@pytest.mark.parametrize(
    "distribution, expected",
    [
        (optuna.distributions.FloatDistribution(-1.0, 2.0), Float(-1.0, 2.0)),
        (optuna.distributions.FloatDistribution(1e-5, 1.0, log=True), Float(1e-5, 1.0, log=True)),
        (optuna.distributions.FloatDistribution(0.0, 1.0, step=0.25), Float(0.0, 1.0, step=0.25)),
        (optuna.distributions.IntDistribution(2, 10, step=2), Int(2, 10, step=2)),
        (optuna.distributions.IntDistribution(1, 64, log=True), Int(1, 64, log=True)),
        (
            optuna.distributions.CategoricalDistribution(["a", 1, None]),
            Categorical(["a", 1, None]),
        ),
    ],
)
def test_distributions_map_to_parameters(distribution, expected):
    assert to_parameter(distribution) == expected


def test_the_model_proposes_after_the_startup_trials_and_beats_random_on_a_quadratic():
    """Twelve trials: 4 random, then 8 model-based ones that close in on the optimum."""

    def objective(trial):
        x = trial.suggest_float("x", -5.0, 5.0)
        k = trial.suggest_int("k", 0, 10)
        return (x - 1.3) ** 2 + 0.1 * (k - 7) ** 2

    sampler = BayesOptSampler(n_startup_trials=4, seed=3, optimizer_settings=_fast_settings())
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=12)
    random_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    random_study.optimize(objective, n_trials=12)
    assert len(study.trials) == 12
    # the model's trials (after the startup) found a point within 0.1 of the optimum value 0
    assert min(t.value for t in study.trials[4:]) < 0.1
    assert study.best_value < random_study.best_value


def test_maximize_is_respected():
    sampler = BayesOptSampler(n_startup_trials=3, seed=1, optimizer_settings=_fast_settings())
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: -((t.suggest_float("x", 0.0, 1.0) - 0.7) ** 2), n_trials=10)
    assert abs(study.best_params["x"] - 0.7) < 0.05


def test_failed_and_running_trials_are_pending_points():
    """Neither a FAIL trial's point nor another worker's RUNNING point is proposed again."""
    dist = {"x": optuna.distributions.IntDistribution(0, 5)}
    sampler = BayesOptSampler(n_startup_trials=0, seed=0, optimizer_settings=_fast_settings())
    study = optuna.create_study(sampler=sampler)
    for x, v in [(0, 3.0), (5, 0.5)]:
        study.add_trial(optuna.create_trial(params={"x": x}, distributions=dist, value=v))
    study.add_trial(
        optuna.create_trial(
            params={"x": 2}, distributions=dist, state=optuna.trial.TrialState.FAIL
        )
    )
    first = study.ask(dist).params["x"]  # left RUNNING, as by another worker
    second = study.ask(dist).params["x"]
    assert first in (1, 3, 4)
    assert second in {1, 3, 4} - {first}


def test_same_seed_same_proposals():
    def run(seed):
        sampler = BayesOptSampler(
            n_startup_trials=2, seed=seed, optimizer_settings=_fast_settings()
        )
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: (t.suggest_float("x", -2.0, 2.0) - 0.5) ** 2, n_trials=5)
        return [t.params["x"] for t in study.trials]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_multi_objective_study_gets_a_clear_error():
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=BayesOptSampler())
    with pytest.raises(ValueError, match="single-objective; the study has 2 objectives"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=1)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n_startup_trials": -1}, ValueError, "n_startup_trials: expected a non-negative"),
        ({"seed": 1.5}, TypeError, "seed: expected an integer"),
        ({"surrogate": "nope"}, ValueError, "nope"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        BayesOptSampler(**kwargs)


def test_missing_optuna_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    monkeypatch.delitem(sys.modules, "bayesopt.integrations.optuna", raising=False)
    with pytest.raises(ImportError, match=r'pip install "bayesopt\[optuna\]"'):
        import bayesopt.integrations.optuna  # noqa: F401


# --- Branin: regret of an Optuna study driven by BayesOptSampler -----------------------
BRANIN_MIN = 0.397887357729738


def _branin(x1: float, x2: float) -> float:
    b, c, r, s, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


def _branin_regret(seed: int, n_trials: int = 30) -> float:
    sampler = BayesOptSampler(seed=seed)  # defaults: gp, qlognei, 10 random start-up trials
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: _branin(t.suggest_float("x1", -5.0, 10.0), t.suggest_float("x2", 0.0, 15.0)),
        n_trials=n_trials,
    )
    return study.best_value - BRANIN_MIN


def test_branin_regret_one_seed():
    t0 = time.perf_counter()
    regret = _branin_regret(seed=0)
    print(f"Branin-30, seed 0: regret {regret:.2e} in {time.perf_counter() - t0:.1f} s")
    assert regret < 0.05


@pytest.mark.slow
def test_branin_median_regret_over_five_seeds():
    regrets = [_branin_regret(seed) for seed in range(5)]
    print("Branin-30 regrets:", [f"{r:.2e}" for r in regrets])
    assert statistics.median(regrets) < 0.05
