"""BayesOptSearch on a local Ray instance (2 CPUs, no dashboard, usage stats off)."""

from __future__ import annotations

import math
import os
import pickle
import sys
import time

import pytest

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # before ray is imported: no usage reporting
ray = pytest.importorskip("ray")
tune = pytest.importorskip("ray.tune")

from ray.tune.search import ConcurrencyLimiter  # noqa: E402

from bayesopt import Optimizer, TrialState  # noqa: E402
from bayesopt.integrations.ray import BayesOptSearch, convert_search_space  # noqa: E402
from bayesopt.space import Categorical, Float, Int  # noqa: E402


def branin(x1, x2):
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def _fast():
    from acquisitions.optimize import OptimizerSettings

    return OptimizerSettings(num_restarts=2, raw_samples=64, maxiter=50)


@pytest.fixture(scope="module")
def local_ray():
    # Ray's workers cannot import this test module: ship its functions by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _train(config):
    time.sleep(0.3)  # long enough for the two concurrent trials to overlap
    if config["x1"] > 9.5:
        raise RuntimeError("diverged")  # an evaluation that fails
    tune.report({"loss": branin(config["x1"], config["x2"])})


def _tuner(search, tmp_path, num_samples, name):
    return tune.Tuner(
        _train,
        param_space={"x1": tune.uniform(-5.0, 10.0), "x2": tune.uniform(0.0, 15.0)},
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(search, max_concurrent=2), num_samples=num_samples
        ),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path / "ray"), verbose=0),
    )


def test_twenty_trials_two_at_a_time_and_the_best_matches_the_storage(local_ray, tmp_path):
    url = f"sqlite:///{tmp_path / 'ray.db'}"
    search = BayesOptSearch(
        metric="loss", mode="min", seed=0, storage=url, study="ray", optimizer_settings=_fast()
    )
    t0 = time.perf_counter()
    results = _tuner(search, tmp_path, 20, "twenty").fit()
    print(f"20 Ray Tune trials, 2 concurrent: {time.perf_counter() - t0:.1f} s")
    search.close()

    opt = Optimizer.load(url, "ray", heartbeat_interval=None)
    try:
        trials = opt.trials
        best = opt.best_trial
    finally:
        opt.close()
    assert [t.id for t in trials] == list(range(20))
    assert not any(t.state is TrialState.RUNNING for t in trials)
    failed = [t for t in trials if t.state is TrialState.FAILED]
    assert all(t.params["x1"] > 9.5 for t in failed)  # exactly the trials that raised
    assert all(t.value == branin(**t.params) for t in trials if t.state is TrialState.COMPLETE)
    assert len(results) == 20 and len(results.errors) == len(failed)

    ray_best = results.get_best_result(metric="loss", mode="min")
    assert ray_best.metrics["loss"] == best.value
    assert ray_best.config == best.params
    # It optimized: at least 7 of the 20 evaluations of Branin (minimum 0.398; x1 > 9.5
    # fails) are below 10, which uniform random search achieves with probability 1.9%
    # (400,000 simulated runs). The old check, best < 2.0, passes for random 42% of the
    # time, and no bound on the best alone is both hard for random and robust here: the
    # Ray completion order changes the trajectory (seed 0's best was 0.398 in one run and
    # 0.560 in three) and an in-process replica's best ranged 0.398-11.9 over seeds 0-11
    # (median 0.41). The count below 10 was 9 and 10 in two runs of this test, and 7-10 on
    # 10 of the replica's 12 seeds (9 for seed 0).
    good = [t for t in trials if t.state is TrialState.COMPLETE and t.value < 10.0]
    print(f"best value {best.value:.6f}, {len(good)} of 20 below 10")
    assert len(good) >= 7

    # at most two trials were running at any time, and two did run together
    def running_at(s):
        return sum(t.attrs["created_at"] <= s < t.attrs["finished_at"] for t in trials)

    overlap = max(running_at(t.attrs["created_at"]) for t in trials)
    assert overlap == 2

    # Tune saved the searcher into the experiment directory; it restores to the same study
    saved = sorted((tmp_path / "ray" / "twenty").glob("searcher-state-*.pkl"))
    assert saved
    restored = BayesOptSearch()
    restored.restore(str(saved[-1]))
    assert [(t.id, t.state, t.value) for t in restored.trials] == [
        (t.id, t.state, t.value) for t in trials
    ]
    restored.close()


def test_errored_trials_are_failed_and_the_search_goes_on(local_ray, tmp_path):
    search = BayesOptSearch(
        metric="loss",
        mode="min",
        seed=1,
        n_initial=3,
        points_to_evaluate=[{"x1": 10.0, "x2": 1.0}],  # raises in _train
        optimizer_settings=_fast(),
    )
    results = _tuner(search, tmp_path, 4, "errors").fit()
    trials = search.trials
    search.close()
    assert len(results) == 4 and len(results.errors) >= 1
    assert trials[0].params == {"x1": 10.0, "x2": 1.0}
    assert trials[0].state is TrialState.FAILED
    assert "errored" in trials[0].attrs["fail_reason"]
    assert sum(t.state is not TrialState.RUNNING for t in trials) == 4


# --- without Ray running ------------------------------------------------------------------
def test_search_space_conversion():
    space = convert_search_space(
        {
            "lr": tune.loguniform(1e-4, 1e-1),
            "drop": tune.quniform(0.0, 0.5, 0.1),
            "layers": tune.randint(1, 5),  # upper bound excluded
            "width": tune.qrandint(16, 128, 16),  # upper bound included
            "units": tune.lograndint(8, 257),
            "act": tune.choice(["relu", "tanh"]),
            "opt": {"momentum": tune.uniform(0.5, 0.99)},
            "fixed": Float(0.0, 1.0),
            "epochs": 3,  # a constant: Ray merges it into the config itself
        }
    )
    assert space == {
        "lr": Float(1e-4, 1e-1, log=True),
        "drop": Float(0.0, 0.5, step=0.1),
        "layers": Int(1, 4),
        "width": Int(16, 128, step=16),
        "units": Int(8, 256, log=True),
        "act": Categorical(["relu", "tanh"]),
        "opt/momentum": Float(0.5, 0.99),
        "fixed": Float(0.0, 1.0),
    }


@pytest.mark.parametrize(
    "config, match",
    [
        ({"x": tune.grid_search([1, 2])}, "grid search"),
        ({"x": tune.randn(0.0, 1.0)}, "Normal sampler is not supported"),
        ({"x": tune.qloguniform(1e-3, 1.0, 1e-3)}, "log scale with a step"),
    ],
)
def test_unsupported_search_spaces_are_refused(config, match):
    with pytest.raises(ValueError, match=match):
        convert_search_space(config)


def test_save_restore_and_pickle_keep_an_in_memory_study(tmp_path):
    def make():
        return BayesOptSearch(
            {"x1": tune.uniform(-5.0, 10.0), "x2": tune.uniform(0.0, 15.0)},
            metric="loss",
            mode="min",
            seed=3,
            n_initial=2,
            optimizer_settings=_fast(),
        )

    search = make()
    configs = {tid: search.suggest(tid) for tid in ("a", "b", "c")}
    search.on_trial_complete("a", {"loss": branin(**configs["a"])})
    search.on_trial_complete("b", error=True)
    path = tmp_path / "searcher-state.pkl"
    search.save(str(path))
    from_file = make()
    from_file.restore(str(path))
    copies = [from_file, pickle.loads(pickle.dumps(search))]

    search.on_trial_complete("c", {"loss": 1.5})
    expected = search.suggest("d")  # a model-based proposal (two COMPLETE trials)
    assert search.trials[3].attrs["source"] == "model"
    for restored in copies:
        states = [t.state for t in restored.trials]
        assert states == [TrialState.COMPLETE, TrialState.FAILED, TrialState.RUNNING]
        assert [t.params for t in restored.trials] == [configs[k] for k in "abc"]
        restored.on_trial_complete("c", {"loss": 1.5})  # Ray resumes trial "c"
        assert restored.trials[2].value == 1.5
        assert restored.suggest("d") == expected  # same seed and history: same proposal
        restored.close()
    search.close()


def test_metric_missing_or_nan_is_failed():
    search = BayesOptSearch(
        {"x": Float(0.0, 1.0)}, metric="loss", mode="max", seed=0, optimizer_settings=_fast()
    )
    search.suggest("a")
    search.suggest("b")
    search.on_trial_complete("a", {"other": 1.0})
    with pytest.warns(RuntimeWarning, match="non-finite"):
        search.on_trial_complete("b", {"loss": float("nan")})
    assert [t.state for t in search.trials] == [TrialState.FAILED, TrialState.FAILED]
    assert "no numeric 'loss'" in search.trials[0].attrs["fail_reason"]
    search.close()


def test_without_space_or_metric_the_error_says_what_is_missing():
    search = BayesOptSearch(seed=0)
    with pytest.raises(RuntimeError, match="no space, metric, mode given"):
        search.suggest("a")
    assert search.set_search_properties("loss", "min", {"x": tune.uniform(0, 1)})
    assert search.suggest("a") == {"x": pytest.approx(search.trials[0].params["x"])}
    assert not search.set_search_properties("loss", "min", {"x": tune.uniform(0, 2)})
    search.close()


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    monkeypatch.delitem(sys.modules, "bayesopt.integrations.ray", raising=False)
    with pytest.raises(ImportError, match=r'pip install "bayesopt\[ray\]"'):
        import bayesopt.integrations.ray  # noqa: F401
