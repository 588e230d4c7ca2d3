"""The ask/tell optimizer and the minimize loop."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest
import torch

from bayesopt import Categorical, Float, Int, Optimizer, Space, TrialState, minimize

QUAD_SPACE = {"x": Float(0.0, 1.0), "y": Float(-1.0, 1.0)}


def quad(p):
    return (p["x"] - 0.3) ** 2 + (p["y"] + 0.2) ** 2


def in_space(space, params):
    """Whether ``params`` validates against ``space`` and is unchanged by validation."""
    space = Space(space)
    return space.validate(params) == params


# --- ask / tell / fail / add / enqueue --------------------------------------------------


def test_ask_tell_ids_states_and_values(make_optimizer):
    opt = make_optimizer(QUAD_SPACE, n_initial=3)
    assert opt.trials == []
    assert opt.best_trial is None
    t0 = opt.ask()
    t1 = opt.ask()
    assert (t0.id, t1.id) == (0, 1)
    assert t0.state is TrialState.RUNNING and t0.value is None
    assert in_space(QUAD_SPACE, t0.params)
    assert opt.best_trial is None  # nothing COMPLETE yet

    done = opt.tell(t1, 0.25)
    assert done.id == 1 and done.state is TrialState.COMPLETE and done.value == 0.25
    assert done.params == t1.params
    assert type(done.value) is float
    done = opt.tell(0, 3)  # a trial id works too; an int value is stored as a float
    assert done.state is TrialState.COMPLETE and done.value == 3.0 and type(done.value) is float

    t2 = opt.ask()
    failed = opt.fail(t2, "out of memory")
    assert failed.state is TrialState.FAILED and failed.value is None
    assert failed.attrs["fail_reason"] == "out of memory"

    trials = opt.trials
    assert [t.id for t in trials] == [0, 1, 2]
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAILED,
    ]
    assert [t.value for t in trials] == [3.0, 0.25, None]
    assert opt.best_trial.id == 1
    assert opt.ask().id == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [(np.float64(0.5), 0.5), (np.float32(0.25), 0.25), (torch.tensor(1.5), 1.5), (7, 7.0)],
)
def test_tell_accepts_real_scalars(make_optimizer, value, expected):
    opt = make_optimizer(QUAD_SPACE)
    t = opt.tell(opt.ask(), value)
    assert t.value == expected and type(t.value) is float
    assert opt.trials[0].value == expected


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_best_trial_follows_the_direction(make_optimizer, direction):
    opt = make_optimizer({"x": Float(0.0, 1.0)}, direction=direction)
    for x, v in [(0.1, 2.0), (0.2, -1.0), (0.3, 5.0), (0.4, -1.0), (0.5, 5.0)]:
        opt.add({"x": x}, v)
    best = opt.best_trial
    if direction == "minimize":
        assert (best.id, best.value) == (1, -1.0)  # ties go to the earlier trial
    else:
        assert (best.id, best.value) == (2, 5.0)


def test_add_records_a_complete_trial_with_the_next_id(make_optimizer):
    space = {"x": Float(-5.0, 10.0), "n": Int(1, 4), "c": Categorical(["relu", "tanh"])}
    opt = make_optimizer(space)
    opt.ask()
    t = opt.add({"x": 1, "n": 2.0, "c": "relu"}, 0.37)
    assert t.id == 1
    assert t.state is TrialState.COMPLETE and t.value == 0.37
    assert t.params == {"x": 1.0, "n": 2, "c": "relu"}
    assert type(t.params["x"]) is float and type(t.params["n"]) is int
    assert t.attrs["source"] == "added"
    assert opt.trials[1] == t
    assert opt.best_trial.id == 1
    assert opt.ask().id == 2


def test_enqueue_is_returned_by_the_next_asks_in_order(make_optimizer):
    space = {"x": Float(-5.0, 10.0), "c": Categorical(["relu", "tanh"])}
    opt = make_optimizer(space, n_initial=3)
    opt.enqueue({"x": 0.0, "c": "tanh"})
    opt.enqueue({"x": 1, "c": "relu"})
    a = opt.ask()
    assert (a.id, a.params, a.attrs["source"]) == (0, {"x": 0.0, "c": "tanh"}, "enqueued")
    opt.enqueue({"x": 2.0, "c": "relu"})
    batch = opt.ask_batch(3)
    assert [t.id for t in batch] == [1, 2, 3]
    assert [t.params for t in batch[:2]] == [{"x": 1.0, "c": "relu"}, {"x": 2.0, "c": "relu"}]
    assert [t.attrs["source"] for t in batch] == ["enqueued", "enqueued", "sobol"]
    assert opt.ask().attrs["source"] == "sobol"  # the queue is empty again


# --- initial design, batches ---------------------------------------------------------------


def test_sobol_design_is_distinct_inside_the_space_and_indexed_by_trial(make_optimizer):
    space = {
        "x": Float(-5.0, 10.0),
        "lr": Float(1e-5, 1e-1, log=True),
        "n": Int(1, 64),
        "c": Categorical(["a", "b", "c"]),
    }
    opt = make_optimizer(space, n_initial=6, seed=11)
    trials = [opt.ask() for _ in range(6)]
    assert [t.attrs["source"] for t in trials] == ["sobol"] * 6
    for t in trials:
        assert in_space(space, t.params)
    assert len({tuple(t.params.values()) for t in trials}) == 6
    assert len({t.params["x"] for t in trials}) == 6
    # Sobol point k goes to trial k, however the trials are asked for
    other = make_optimizer(space, n_initial=6, seed=11)
    batch = other.ask_batch(2) + [other.ask()] + other.ask_batch(3)
    assert [t.params for t in batch] == [t.params for t in trials]
    # another seed scrambles differently
    third = make_optimizer(space, n_initial=6, seed=12)
    assert third.ask().params != trials[0].params


def _tell_initial(opt, fn, n):
    for _ in range(n):
        t = opt.ask()
        opt.tell(t, fn(t.params))


def test_ask_batch_after_the_initial_design_is_distinct(make_optimizer):
    opt = make_optimizer(QUAD_SPACE, n_initial=3)
    _tell_initial(opt, quad, 3)
    pending = opt.ask()
    batch = opt.ask_batch(4)
    assert [t.id for t in batch] == [4, 5, 6, 7]
    assert all(t.state is TrialState.RUNNING for t in batch)
    assert [t.attrs["source"] for t in batch] == ["model"] * 4
    keys = {tuple(t.params.values()) for t in [*batch, pending]}
    assert len(keys) == 5
    for t in batch:
        assert in_space(QUAD_SPACE, t.params)
    assert [t.id for t in opt.trials] == list(range(8))


@pytest.mark.parametrize(
    "space",
    [
        {"n": Int(1, 4), "c": Categorical(["a", "b", "c"])},
        {"n": Int(0, 2), "c": Categorical([True, 1, None])},
    ],
)
def test_ask_batch_on_a_small_discrete_space_is_distinct(make_optimizer, space):
    opt = make_optimizer(space, n_initial=3, seed=5)

    def fn(p):
        return float(p["n"]) + (0.5 if p["c"] in ("a", None) else 0.0)

    _tell_initial(opt, fn, 3)
    pending = opt.ask()
    batch = opt.ask_batch(4)
    assert len(batch) == 4
    assert [t.attrs["source"] for t in batch] != ["sobol"] * 4
    keys = [tuple((k, type(v), v) for k, v in t.params.items()) for t in [*batch, pending]]
    assert len(set(keys)) == 5, keys
    for t in batch:
        assert in_space(space, t.params)
        assert type(t.params["n"]) is int


# --- determinism ----------------------------------------------------------------------------


def _run(make_optimizer, seed, n=8, **kwargs):
    opt = make_optimizer(QUAD_SPACE, n_initial=3, seed=seed, **kwargs)
    asked = []
    for _ in range(n):
        t = opt.ask()
        asked.append(t.params)
        opt.tell(t, quad(t.params))
    return asked, opt


def test_same_seed_and_tells_give_the_same_asks(make_optimizer):
    a, opt = _run(make_optimizer, seed=7)
    torch.manual_seed(12345)  # global random state must not matter
    np.random.seed(12345)
    b, _ = _run(make_optimizer, seed=7)
    assert a == b
    assert [t.attrs["source"] for t in opt.trials] == ["sobol"] * 3 + ["model"] * 5
    c, _ = _run(make_optimizer, seed=8)
    assert all(pa != pc for pa, pc in zip(a, c))


def test_ask_leaves_global_random_state_alone(make_optimizer):
    opt = make_optimizer(QUAD_SPACE, n_initial=3)
    _tell_initial(opt, quad, 3)
    torch.manual_seed(0)
    np.random.seed(0)
    torch_state = torch.get_rng_state().clone()
    np_state = np.random.get_state()[1].copy()
    assert opt.ask().attrs["source"] == "model"
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_a_resumed_study_asks_what_an_uninterrupted_one_asks(make_optimizer, sqlite_url):
    first = make_optimizer(QUAD_SPACE, n_initial=3, seed=3, storage=sqlite_url, study="s")
    _tell_initial(first, quad, 5)
    first.close()

    reopened = Optimizer.load(sqlite_url, "s", optimizer_settings=first.optimizer_settings)
    try:
        assert reopened.seed == 3 and reopened.n_initial == 3
        resumed = [reopened.ask() for _ in range(2)]
    finally:
        reopened.close()

    straight = make_optimizer(QUAD_SPACE, n_initial=3, seed=3)
    _tell_initial(straight, quad, 5)
    uninterrupted = [straight.ask() for _ in range(2)]
    assert [t.id for t in resumed] == [5, 6]
    assert [t.params for t in resumed] == [t.params for t in uninterrupted]
    assert resumed[0].attrs["source"] == "model"


# --- stale trials and non-finite values ------------------------------------------------------


def test_tell_on_a_stale_failed_trial_is_accepted(make_optimizer, sqlite_url):
    opt = make_optimizer(QUAD_SPACE, storage=sqlite_url, heartbeat_interval=None, grace_period=0.3)
    t0 = opt.ask()
    time.sleep(0.5)
    t1 = opt.ask()  # this ask finds t0's heartbeat older than the grace period
    stale = opt.trials[0]
    assert stale.state is TrialState.FAILED
    assert stale.attrs["fail_reason"] == "stale"
    assert opt.trials[1].state is TrialState.RUNNING and t1.id == 1
    with pytest.raises(ValueError, match=r"trial 0 is already FAILED"):
        opt.fail(t0, "late failure")
    late = opt.tell(t0, 0.75)
    assert late.state is TrialState.COMPLETE and late.value == 0.75
    assert opt.trials[0].state is TrialState.COMPLETE and opt.trials[0].value == 0.75
    with pytest.raises(ValueError, match=r"trial 0 is already COMPLETE with value 0\.75"):
        opt.tell(t0, 0.5)


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf"), torch.tensor(math.nan)],
)
def test_non_finite_value_marks_the_trial_failed_with_a_warning(make_optimizer, value):
    opt = make_optimizer(QUAD_SPACE, n_initial=2)
    ok = opt.ask()
    opt.tell(ok, 1.0)
    t = opt.ask()
    with pytest.warns(RuntimeWarning, match=r"trial 1.*non-finite"):
        out = opt.tell(t, value)
    assert out.state is TrialState.FAILED and out.value is None
    assert "non-finite" in out.attrs["fail_reason"]
    stored = opt.trials[1]
    assert stored.state is TrialState.FAILED and stored.value is None
    assert opt.best_trial.id == 0
    with pytest.raises(ValueError, match=r"trial 1 is already FAILED"):
        opt.tell(t, 2.0)
    # the non-finite value never reaches the model
    opt.tell(opt.ask(), 2.0)
    nxt = opt.ask()
    assert nxt.attrs["source"] == "model"
    assert in_space(QUAD_SPACE, nxt.params)


def test_add_with_a_non_finite_value_records_a_failed_trial(make_optimizer):
    opt = make_optimizer(QUAD_SPACE)
    with pytest.warns(RuntimeWarning, match=r"non-finite"):
        t = opt.add({"x": 0.5, "y": 0.0}, math.inf)
    assert t.state is TrialState.FAILED and t.value is None
    assert opt.best_trial is None


# --- model-based reading: recommend, predict --------------------------------------------------


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_predict_is_in_the_objective_units(make_optimizer, direction):
    opt = make_optimizer({"x": Float(0.0, 1.0)}, direction=direction)
    for x in np.linspace(0.0, 1.0, 8):
        opt.add({"x": float(x)}, 2.0 * float(x) + 1.0)
    mean, std = opt.predict([{"x": 0.5}, {"x": 0.0}, {"x": 1.0}])
    assert mean.shape == (3,) and std.shape == (3,)
    assert mean == pytest.approx([2.0, 1.0, 3.0], abs=0.03)
    assert np.all(std >= 0) and np.all(std < 0.05)
    best = 0.0 if direction == "minimize" else 1.0
    assert opt.recommend().params == {"x": best}


def test_predict_rejects_bad_points(make_optimizer):
    opt = make_optimizer({"x": Float(0.0, 1.0)})
    for x in (0.1, 0.5, 0.9):
        opt.add({"x": x}, x)
    with pytest.raises(TypeError, match="single dict"):
        opt.predict({"x": 0.5})
    with pytest.raises(ValueError, match=r"'x'.*1\.5"):
        opt.predict([{"x": 1.5}])


def test_recommend_prefers_the_posterior_mean_to_a_lucky_observation(make_optimizer):
    rng = np.random.default_rng(0)
    opt = make_optimizer({"x": Float(0.0, 1.0)})
    assert opt.recommend() is None
    opt.add({"x": 0.2}, 1.0)
    assert opt.recommend().id == 0  # fewer than two COMPLETE trials: the best observed one
    for x in np.linspace(0.0, 1.0, 12):
        for _ in range(2):
            opt.add({"x": float(x)}, float((x - 0.5) ** 2 + 0.02 * rng.standard_normal()))
    lucky = opt.add({"x": 0.9}, -0.05)  # true value 0.16
    assert opt.best_trial.id == lucky.id
    rec = opt.recommend()
    assert rec.state is TrialState.COMPLETE
    assert abs(rec.params["x"] - 0.5) < 0.1


# --- minimize ---------------------------------------------------------------------------------


def test_minimize_finds_the_minimum_of_a_quadratic(fast_settings):
    opt = minimize(
        lambda p: (p["x"] - 0.3) ** 2,
        {"x": Float(-2.0, 2.0)},
        n_trials=12,
        n_initial=4,
        seed=0,
        progress=False,
        optimizer_settings=fast_settings,
    )
    assert isinstance(opt, Optimizer)
    assert len(opt.trials) == 12
    assert all(t.state is TrialState.COMPLETE for t in opt.trials)
    assert opt.best_trial.value < 1e-3
    assert abs(opt.best_trial.params["x"] - 0.3) < 0.035


def test_minimize_records_failures_and_goes_on(fast_settings):
    def fn(p):
        if p["x"] > 0.6:
            raise ValueError(f"cannot evaluate x={p['x']}")
        if p["x"] < 0.1:
            return math.nan
        return p["x"]

    opt = minimize(
        fn,
        {"x": Float(0.0, 1.0)},
        n_trials=10,
        n_initial=4,
        seed=1,
        progress=False,
        max_failure_rate=0.9,
        optimizer_settings=fast_settings,
    )
    trials = opt.trials
    assert len(trials) == 10
    assert [t.id for t in trials] == list(range(10))
    failed = [t for t in trials if t.state is TrialState.FAILED]
    assert failed, "the initial design alone hits x > 0.6"
    for t in trials:
        x = t.params["x"]
        if x > 0.6:
            assert t.state is TrialState.FAILED
            assert t.attrs["fail_reason"].startswith("ValueError: cannot evaluate")
        elif x < 0.1:
            assert t.state is TrialState.FAILED and "non-finite" in t.attrs["fail_reason"]
        else:
            assert t.state is TrialState.COMPLETE and t.value == x


def test_minimize_stops_when_too_many_trials_fail(fast_settings, sqlite_url):
    def fn(p):
        raise RuntimeError("broken objective")

    # the same rule as the sweeper's: failures > rate * max(finished, 5): 3 > 2.5
    with pytest.raises(
        RuntimeError,
        match=r"3 of the 3 trials finished by this run failed.*max_failure_rate=0\.5",
    ):
        minimize(
            fn,
            {"x": Float(0.0, 1.0)},
            n_trials=20,
            seed=0,
            progress=False,
            storage=sqlite_url,
            optimizer_settings=fast_settings,
        )
    opt = Optimizer.load(sqlite_url)
    try:
        trials = opt.trials
        assert len(trials) == 3
        assert all(t.state is TrialState.FAILED for t in trials)
        assert all(t.attrs["fail_reason"] == "RuntimeError: broken objective" for t in trials)
    finally:
        opt.close()


def test_a_rerun_after_fixing_the_objective_is_not_stopped_by_old_failures(
    fast_settings, sqlite_url
):
    # the README's advice after a max_failure_rate stop: fix the task and rerun.
    # Old failures do not count against the new run (they did: each rerun added
    # one trial and stopped again).
    space = {"x": Float(0.0, 1.0)}
    kwargs = dict(seed=0, progress=False, storage=sqlite_url, optimizer_settings=fast_settings)

    def broken(p):
        raise RuntimeError("broken objective")

    with pytest.raises(RuntimeError, match="max_failure_rate"):
        minimize(broken, space, n_trials=12, **kwargs)
    opt = minimize(lambda p: (p["x"] - 0.3) ** 2, space, n_trials=12, **kwargs)
    try:
        states = [t.state for t in opt.trials]
        assert len(states) == 12
        assert states.count(TrialState.FAILED) == 3
        assert states.count(TrialState.COMPLETE) == 9
    finally:
        opt.close()


def test_minimize_resumes_to_the_same_total(fast_settings, sqlite_url):
    kwargs = dict(
        n_initial=3, seed=0, progress=False, storage=sqlite_url, optimizer_settings=fast_settings
    )
    opt = minimize(lambda p: p["x"], {"x": Float(0.0, 1.0)}, n_trials=4, **kwargs)
    opt.close()
    opt = minimize(lambda p: p["x"], {"x": Float(0.0, 1.0)}, n_trials=6, **kwargs)
    opt.close()
    opt = minimize(lambda p: p["x"], {"x": Float(0.0, 1.0)}, n_trials=6, **kwargs)
    try:
        assert [t.id for t in opt.trials] == list(range(6))
    finally:
        opt.close()


def test_mixed_space_end_to_end(fast_settings):
    space = {
        "x": Float(-2.0, 2.0),
        "lr": Float(1e-4, 1e-1, log=True),
        "n": Int(1, 4),
        "c": Categorical(["a", "b", None]),
    }

    def fn(p):
        assert type(p["x"]) is float and type(p["lr"]) is float
        assert type(p["n"]) is int
        assert p["c"] in ("a", "b", None)
        return (p["x"] - 0.3) ** 2 + abs(math.log10(p["lr"]) + 2) + p["n"] + (p["c"] != "b")

    opt = minimize(
        fn,
        space,
        n_trials=6,
        n_initial=4,
        seed=0,
        progress=False,
        optimizer_settings=fast_settings,
    )
    trials = opt.trials
    assert [t.attrs["source"] for t in trials] == ["sobol"] * 4 + ["model"] * 2
    for t in trials:
        assert t.state is TrialState.COMPLETE
        assert in_space(space, t.params)
        assert t.value == pytest.approx(fn(t.params), rel=0, abs=0)
    assert opt.best_trial.value == min(t.value for t in trials)


# --- numerically awkward data -----------------------------------------------------------------


def _constant(x, y):
    return 1.0


def _huge(x, y):
    return 1e9 + 1e-3 * ((x - 0.3) ** 2 + y**2)


def _tiny(x, y):
    return 1e-9 * ((x - 0.3) ** 2 + y**2)


@pytest.mark.parametrize("fn", [_constant, _huge, _tiny], ids=["constant", "1e9", "1e-9"])
def test_awkward_values_give_in_bounds_proposals(make_optimizer, fn):
    opt = make_optimizer(QUAD_SPACE, n_initial=3, seed=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(6):
            t = opt.ask()
            assert in_space(QUAD_SPACE, t.params)
            opt.tell(t, fn(t.params["x"], t.params["y"]))
        batch = opt.ask_batch(2)
    # Constant and 1e9-offset outcomes make botorch say the training targets it got are
    # not standardized; that is the only warning allowed. A model fallback (RuntimeWarning
    # "model-based proposal failed", ModelFallbackWarning) or any numerical warning fails.
    from botorch.exceptions.warnings import InputDataWarning

    unexpected = [
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if not (
            issubclass(w.category, InputDataWarning) and "is not standardized" in str(w.message)
        )
    ]
    assert unexpected == []
    assert [t.attrs["source"] for t in opt.trials] == ["sobol"] * 3 + ["model"] * 5
    for t in batch:
        assert in_space(QUAD_SPACE, t.params)
    assert len({tuple(t.params.values()) for t in batch}) == 2
    assert all(t.state is TrialState.COMPLETE for t in opt.trials[:6])


def test_duplicate_points_do_not_break_the_model(make_optimizer):
    opt = make_optimizer(QUAD_SPACE, n_initial=2)
    for v in (1.0, 1.1, 0.9, 1.0):
        opt.add({"x": 0.5, "y": 0.5}, v)
    opt.add({"x": 0.1, "y": -0.5}, 2.0)
    opt.add({"x": 0.1, "y": -0.5}, 2.0)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        asked = [opt.ask() for _ in range(3)]
        mean, std = opt.predict([{"x": 0.5, "y": 0.5}])
    for t in asked:
        assert in_space(QUAD_SPACE, t.params)
    assert mean[0] == pytest.approx(1.0, abs=0.1)
    assert np.isfinite(std[0])


# --- failing regions --------------------------------------------------------------------------


def test_a_region_that_always_fails_is_not_proposed_again(make_optimizer):
    # The objective increases with x, so without failures the optimum is x = 0; but
    # every x < 0.25 fails. After the first failures the model must stop sampling there.
    # Measured with failed points imputed at the worst observed value (8 seeds): at most
    # 2 of the 15 model-based proposals fell in [0, 0.25), mostly probing the edge.
    opt = make_optimizer({"x": Float(0.0, 1.0)}, n_initial=4, seed=0)
    in_region = []
    sources = []
    for i in range(19):
        t = opt.ask()
        x = t.params["x"]
        if x < 0.25:
            opt.fail(t, "diverged")
        else:
            opt.tell(t, x)
        if i >= 4:
            sources.append(t.attrs["source"])
            in_region.append(x < 0.25)
    assert sources == ["model"] * 15
    assert sum(in_region) <= 3, [round(t.params["x"], 3) for t in opt.trials[4:]]
    assert 0.25 <= opt.best_trial.params["x"] < 0.35


# --- opening existing studies -----------------------------------------------------------------


def test_an_existing_study_with_another_space_or_direction_is_refused(make_optimizer, sqlite_url):
    opt = make_optimizer(QUAD_SPACE, storage=sqlite_url, study="s", heartbeat_interval=None)
    opt.tell(opt.ask(), 1.0)
    before = opt.trials

    with pytest.raises(ValueError, match=r"'s'.*'x'.*2\.0"):
        Optimizer({"x": Float(0.0, 2.0), "y": Float(-1.0, 1.0)}, storage=sqlite_url, study="s")
    with pytest.raises(ValueError, match=r"'z'"):
        Optimizer({**QUAD_SPACE, "z": Int(1, 3)}, storage=sqlite_url, study="s")
    with pytest.raises(ValueError, match=r"'y'"):
        Optimizer({"x": Float(0.0, 1.0)}, storage=sqlite_url, study="s")
    with pytest.raises(ValueError, match=r"direction.*'minimize'.*'maximize'"):
        Optimizer(QUAD_SPACE, storage=sqlite_url, study="s", direction="maximize")
    assert opt.trials == before

    # the same setup resumes
    again = make_optimizer(QUAD_SPACE, storage=sqlite_url, study="s")
    assert again.trials == before
    assert again.ask().id == 1


def test_load_reopens_with_the_stored_space_and_direction(sqlite_url, fast_settings):
    space = {"x": Float(1e-3, 1.0, log=True), "n": Int(1, 4), "c": Categorical([None, 1.0])}
    opt = Optimizer(
        space, direction="maximize", seed=42, n_initial=4, storage=sqlite_url, study="mine"
    )
    opt.add({"x": 0.5, "n": 2, "c": 1.0}, 3.0)
    opt.close()
    loaded = Optimizer.load(sqlite_url, "mine", optimizer_settings=fast_settings)
    try:
        assert loaded.space == Space(space)
        assert loaded.direction == "maximize"
        assert (loaded.seed, loaded.n_initial, loaded.study_name) == (42, 4, "mine")
        assert loaded.trials[0].params == {"x": 0.5, "n": 2, "c": 1.0}
        assert type(loaded.trials[0].params["c"]) is float
        assert loaded.ask().id == 1
    finally:
        loaded.close()
    with pytest.raises(ValueError, match=r"'nope'.*\['mine'\]"):
        Optimizer.load(sqlite_url, "nope")


# --- bad input (item 8) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"surrogate": "gpp"}, ValueError, r"'gpp'.*'gp'"),
        ({"acquisition": "ei2"}, ValueError, r"'ei2'.*'qlognei'"),
        ({"surrogate": 3}, TypeError, r"surrogate.*3"),
        ({"direction": "minimise"}, ValueError, r"direction.*'minimise'"),
        ({"direction": "MAXIMIZE"}, ValueError, r"direction.*'MAXIMIZE'"),
        ({"direction": None}, ValueError, r"direction.*None"),
        ({"seed": "0"}, TypeError, r"seed.*'0'"),
        ({"n_initial": -1}, ValueError, r"n_initial.*-1"),
        ({"heartbeat_interval": 0}, ValueError, r"heartbeat_interval.*0"),
        ({"grace_period": -1.0}, ValueError, r"grace_period.*-1\.0"),
        ({"study": ""}, ValueError, r"study.*''"),
        ({"storage": "study.db"}, ValueError, r"storage.*'study\.db'"),
    ],
)
def test_bad_optimizer_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Optimizer(QUAD_SPACE, **kwargs)


def test_empty_space_is_refused():
    with pytest.raises(ValueError, match="empty"):
        Optimizer({})


def test_valid_names_are_listed_for_unknown_surrogate_and_acquisition():
    from acquisitions.base import available_acquisitions
    from surrogates.base import available_surrogates

    with pytest.raises(ValueError) as err:
        Optimizer(QUAD_SPACE, surrogate="nope")
    for name in available_surrogates():
        assert repr(name) in str(err.value)
    with pytest.raises(ValueError) as err:
        Optimizer(QUAD_SPACE, acquisition="nope")
    for name in available_acquisitions():
        assert repr(name) in str(err.value)


MIXED = {"x": Float(0.0, 1.0), "c": Categorical(["a", "b"])}

REJECTED_CALLS = [
    ("tell unknown id", lambda o: o.tell(99, 1.0), ValueError, r"\b99\b"),
    ("tell negative id", lambda o: o.tell(-1, 1.0), ValueError, r"-1"),
    ("tell twice", lambda o: o.tell(0, 2.0), ValueError, r"trial 0 is already COMPLETE"),
    ("tell failed", lambda o: o.tell(2, 2.0), ValueError, r"trial 2 is already FAILED"),
    ("tell str value", lambda o: o.tell(1, "abc"), TypeError, r"value.*'abc'"),
    ("tell None value", lambda o: o.tell(1, None), TypeError, r"value.*None"),
    ("tell list value", lambda o: o.tell(1, [1.0]), TypeError, r"value.*\[1\.0\]"),
    ("tell bool value", lambda o: o.tell(1, True), TypeError, r"value.*True"),
    ("tell complex value", lambda o: o.tell(1, 1 + 2j), TypeError, r"value.*\(1\+2j\)"),
    ("tell bad trial", lambda o: o.tell("1", 1.0), TypeError, r"trial.*'1'"),
    ("fail complete", lambda o: o.fail(0, "x"), ValueError, r"trial 0 is already COMPLETE"),
    ("fail failed", lambda o: o.fail(2), ValueError, r"trial 2 is already FAILED"),
    ("fail unknown", lambda o: o.fail(7), ValueError, r"\b7\b"),
    ("ask_batch(0)", lambda o: o.ask_batch(0), ValueError, r"\bn\b.*\b0\b"),
    ("ask_batch(-2)", lambda o: o.ask_batch(-2), ValueError, r"\bn\b.*-2"),
    ("ask_batch(2.0)", lambda o: o.ask_batch(2.0), ValueError, r"\bn\b.*2\.0"),
    ("ask_batch(True)", lambda o: o.ask_batch(True), ValueError, r"\bn\b.*True"),
    ("add x outside", lambda o: o.add({"x": 1.5, "c": "a"}, 1.0), ValueError, r"'x'.*1\.5"),
    ("add bad choice", lambda o: o.add({"x": 0.5, "c": "z"}, 1.0), ValueError, r"'c'.*'z'"),
    ("add missing", lambda o: o.add({"x": 0.5}, 1.0), ValueError, r"missing.*'c'"),
    (
        "add unknown",
        lambda o: o.add({"x": 0.5, "c": "a", "y": 1}, 1.0),
        ValueError,
        r"unknown.*'y'",
    ),
    ("add str x", lambda o: o.add({"x": "0.5", "c": "a"}, 1.0), TypeError, r"'x'.*'0\.5'"),
    ("add bad value", lambda o: o.add({"x": 0.5, "c": "a"}, "bad"), TypeError, r"'bad'"),
    ("enqueue outside", lambda o: o.enqueue({"x": -1, "c": "a"}), ValueError, r"'x'.*-1"),
    ("enqueue bad choice", lambda o: o.enqueue({"x": 0.1, "c": 1}), ValueError, r"'c'.*1"),
]


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [c[1:] for c in REJECTED_CALLS],
    ids=[c[0] for c in REJECTED_CALLS],
)
def test_a_rejected_call_changes_nothing_in_storage(make_optimizer, sqlite_url, call, exc, match):
    opt = make_optimizer(MIXED, storage=sqlite_url, n_initial=5, heartbeat_interval=None)
    opt.tell(opt.ask(), 1.0)  # trial 0 COMPLETE
    opt.ask()  # trial 1 RUNNING
    opt.fail(opt.ask(), "boom")  # trial 2 FAILED
    before = opt.trials
    with pytest.raises(exc, match=match):
        call(opt)
    assert opt.trials == before
    # a second handle on the database sees the same thing (nothing half-written)
    other = Optimizer.load(sqlite_url, heartbeat_interval=None)
    try:
        assert other.trials == before
    finally:
        other.close()
    nxt = opt.ask()  # nothing was queued or counted by the rejected call
    assert nxt.id == 3 and nxt.attrs["source"] == "sobol"


def test_refit_schedule_is_stored_with_the_trials():
    from bayesopt import proposal

    assert proposal.refit_due(50, 49)  # small studies always refit
    assert not proposal.refit_due(200, 197) and proposal.refit_due(200, 196)  # every 2% = 4
    assert not proposal.refit_due(1000, 981) and proposal.refit_due(1000, 980)
    opt = Optimizer({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}, seed=0, n_initial=2)
    for i in range(102):
        opt.add({"x": (i * 0.618) % 1.0, "y": (i * 0.377) % 1.0}, float(i % 7))
    fitted = []
    for _ in range(3):
        t = opt.ask()
        fitted.append(t.attrs[proposal.FIT_SIZE_ATTR])
        opt.tell(t, 0.5)
    # 102 points: fitted at 102, then reused at 103 and 104 (3 < ceil(0.02 * 104))
    assert fitted == [102, 102, 102]


def test_an_unsupported_surrogate_acquisition_pair_is_refused_at_construction(tmp_path):
    from bayesopt import Float, Optimizer

    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ValueError, match=r"acquisition: 'kg'.*'ensemble'.*fantasize"):
        Optimizer({"x": Float(0, 1)}, surrogate="ensemble", acquisition="kg", storage=url)
    with pytest.raises(ValueError, match=r"'decision_nei'.*'hmc_bnn'.*qlognei"):
        Optimizer({"x": Float(0, 1)}, surrogate="hmc_bnn", acquisition="decision_nei", storage=url)
    # nothing was stored by the refused calls: the study is created fresh here
    opt = Optimizer({"x": Float(0, 1)}, surrogate="ensemble", acquisition="qlognei", storage=url)
    assert opt.trials == []
