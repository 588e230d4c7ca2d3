"""The study under careless users and hostile rows: identity, validation, relaunch, limits.

Each test names the failure it guards against; each failed on the code before
issue 15 (the trial of another study was told silently, a crafted row reached
``ask``, a crashed trial was relaunched for ever, a hung evaluation hung the
loop, a broken model turned the study into random search without a word).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from bayesopt import Float, Int, Optimizer, TrialState, minimize
from bayesopt.fallbacks import ModelFallbackWarning
from bayesopt.trial import Trial

SPACE = {"x": Float(0.0, 1.0), "n": Int(1, 4)}


def quadratic(p):
    return (p["x"] - 0.3) ** 2 + 0.1 * p["n"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- a trial belongs to its study -----------------------------------------------------------
@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_a_trial_of_another_study_is_refused_naming_both(make_optimizer, tmp_path, where):
    url = None if where == "memory" else f"sqlite:///{tmp_path / 's.db'}"
    a = make_optimizer(SPACE, storage=url, study="a")
    b = make_optimizer(SPACE, storage=url if url else None, study="b")
    ta, tb = a.ask(), b.ask()
    assert (ta.id, tb.id) == (0, 0)
    assert ta.study == "a" and tb.study == "b"
    with pytest.raises(ValueError, match=r"trial 0 belongs to study 'a'.*study 'b'"):
        b.tell(ta, 1.0)
    with pytest.raises(ValueError, match="belongs to study 'a'"):
        b.fail(ta, "no")
    assert b.trials[0].state is TrialState.RUNNING  # nothing written
    b.tell(tb, 2.0)
    a.tell(ta, 1.0)
    assert (a.trials[0].value, b.trials[0].value) == (1.0, 2.0)


def test_two_in_memory_studies_of_one_name_are_still_two_studies(make_optimizer):
    a, b = make_optimizer(SPACE), make_optimizer(SPACE)  # both "default", two memories
    ta = a.ask()
    b.ask()
    with pytest.raises(ValueError, match="belongs to study 'default'"):
        b.tell(ta, 1.0)


def test_a_trial_of_another_worker_on_the_same_study_is_accepted(make_optimizer, sqlite_url):
    a = make_optimizer(SPACE, storage=sqlite_url, study="s")
    b = make_optimizer(SPACE, storage=sqlite_url, study="s")
    t = a.ask()
    a.ask()
    assert b.tell(t, 0.5).value == 0.5
    assert b.tell(Trial(1, {}, TrialState.RUNNING), 0.25).id == 1  # a hand-made trial: an id


# --- nothing read from the database is trusted ----------------------------------------------
def test_a_crafted_trial_row_is_skipped_and_the_model_keeps_working(make_optimizer):
    opt = make_optimizer(SPACE, n_initial=3)
    for _ in range(5):
        t = opt.ask()
        opt.tell(t, quadratic(t.params))
    # another writer of the shared database inserts rows the space does not allow
    opt.storage.create_trials(
        opt._study_id,
        [
            ({"x": 1e9, "n": 2}, TrialState.COMPLETE, -1e9, {}),
            ({"x": 0.5, "n": 2, "evil": "yes"}, TrialState.RUNNING, None, {}),
            ({"x": 0.5}, TrialState.COMPLETE, -5.0, {}),
        ],
    )
    with pytest.warns(RuntimeWarning, match=r"stored trial 5 is skipped.*outside") as record:
        trials = opt.trials
    assert [t.id for t in trials if "invalid" in t.attrs] == [5, 6, 7]
    assert "evil" in trials[6].attrs["invalid"] and "missing" in trials[7].attrs["invalid"]
    assert sum("stored trial" in str(w.message) for w in record) == 3
    assert opt.best_trial.value >= 0  # the crafted -1e9 and -5.0 are not the best
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per trial, and no fallback
        nxt = opt.ask()
    assert nxt.attrs["source"] == "model" and 0 <= nxt.params["x"] <= 1
    assert set(nxt.params) == {"x", "n"}
    assert opt.recommend().id < 5


def test_a_crafted_queued_point_is_dropped_not_proposed(make_optimizer):
    opt = make_optimizer(SPACE)
    opt.storage.enqueue(opt._study_id, {"x": 1e9, "evil": "yes"})
    opt.enqueue({"x": 0.25, "n": 3})
    with pytest.warns(RuntimeWarning, match=r"queued point \d+ was dropped.*unknown"):
        first = opt.ask()
    assert first.params == {"x": 0.25, "n": 3} and first.attrs["source"] == "enqueued"
    assert opt.storage.snapshot(opt._study_id).queue == []  # the bad row is gone


# --- relaunching under the trial's own id -----------------------------------------------------
def test_an_orphan_is_relaunched_under_its_id_up_to_max_attempts(make_optimizer, sqlite_url):
    opt = make_optimizer(SPACE, storage=sqlite_url)
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    (orphan,) = opt.storage.create_trials(
        opt._study_id, [({"x": 0.5, "n": 2}, TrialState.RUNNING, None, {"worker": dead})]
    )
    alive = opt.ask()  # this process's own trial is no orphan
    assert [t.id for t in opt.relaunchable()] == [orphan.id]
    again = opt.relaunch(orphan, max_attempts=3)
    assert (again.id, again.state, again.attrs["attempts"]) == (0, TrialState.RUNNING, 2)
    assert opt.relaunchable() == [] and alive.id == 1
    # its new worker (this process) dies too: simulate by writing a dead worker back
    opt.storage.claim_trial(opt._study_id, 0, {"worker": dead}, lambda t: None)
    assert opt.relaunch(0, max_attempts=3).attrs["attempts"] == 3
    opt.storage.claim_trial(opt._study_id, 0, {"worker": dead}, lambda t: None)
    assert opt.relaunch(0, max_attempts=3) is None  # the third launch was the last
    given_up = opt.trials[0]
    assert given_up.state is TrialState.FAILED
    assert given_up.attrs["fail_reason"].startswith("gave up after 3 attempts")
    assert opt.relaunchable() == []


def test_only_one_of_two_workers_claims_an_orphan(make_optimizer, sqlite_url):
    a = make_optimizer(SPACE, storage=sqlite_url, study="s")
    b = make_optimizer(SPACE, storage=sqlite_url, study="s")
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    a.storage.create_trials(
        a._study_id, [({"x": 0.5, "n": 2}, TrialState.RUNNING, None, {"worker": dead})]
    )
    stale_view = b.relaunchable()
    assert a.relaunch(0) is not None
    assert b.relaunch(stale_view[0]) is None  # a took it meanwhile


def test_an_interrupted_minimize_relaunches_the_trial_on_the_next_run(fast_settings, sqlite_url):
    calls = []

    def fn(p):
        calls.append(dict(p))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return quadratic(p)

    kwargs = dict(seed=0, storage=sqlite_url, progress=False, optimizer_settings=fast_settings)
    with pytest.warns(UserWarning, match="interrupted"):
        opt = minimize(fn, SPACE, n_trials=6, **kwargs)
    t2 = opt.trials[2]
    assert t2.state is TrialState.FAILED and t2.attrs["fail_reason"].startswith("interrupted")
    opt.close()
    opt = minimize(fn, SPACE, n_trials=6, **kwargs)
    trials = opt.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert trials[2].attrs["attempts"] == 2
    assert calls[3] == calls[2] == trials[2].params  # the same point, under its own id
    opt.close()


# --- time limits --------------------------------------------------------------------------
def test_a_hung_evaluation_is_failed_as_timeout_and_the_loop_goes_on(fast_settings):
    def fn(p):
        if p["n"] == 4:
            time.sleep(10**6)
        return quadratic(p)

    t0 = time.monotonic()
    opt = minimize(
        fn,
        SPACE,
        n_trials=6,
        seed=0,
        n_initial=6,
        trial_timeout=0.5,
        progress=False,
        optimizer_settings=fast_settings,
    )
    hung = [t for t in opt.trials if t.params["n"] == 4]
    assert hung and time.monotonic() - t0 < 0.5 * len(hung) + 20
    for t in hung:
        assert t.state is TrialState.FAILED
        assert t.attrs["fail_reason"].startswith("timeout")
    assert all(t.state is TrialState.COMPLETE for t in opt.trials if t.params["n"] != 4)


def test_a_timeout_outside_the_main_thread_abandons_the_evaluation():
    import threading

    from bayesopt.timeout import TrialTimeoutError, call_with_timeout

    out = {}

    def run():
        t0 = time.monotonic()
        try:
            call_with_timeout(time.sleep, 30, timeout=0.3)
        except TrialTimeoutError as exc:
            out["error"] = str(exc)
        out["seconds"] = time.monotonic() - t0

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(10)
    assert "trial_timeout=0.3" in out["error"] and out["seconds"] < 5


def test_a_handler_that_swallows_the_alarm_does_not_keep_a_late_value():
    from bayesopt.timeout import TrialTimeoutError, call_with_timeout

    def stubborn():
        try:
            time.sleep(30)
        except TrialTimeoutError:
            pass
        return 1.0

    with pytest.raises(TrialTimeoutError):
        call_with_timeout(stubborn, timeout=0.2)


def test_the_whole_call_timeout_stops_asking(fast_settings):
    def slow(p):
        time.sleep(0.3)
        return quadratic(p)

    opt = minimize(
        slow,
        SPACE,
        n_trials=50,
        seed=0,
        n_initial=50,
        timeout=1.0,
        progress=False,
        optimizer_settings=fast_settings,
    )
    assert 2 <= len(opt.trials) <= 6


# --- fallbacks are loud -------------------------------------------------------------------
class _Broken:
    """A surrogate whose every fit fails (numerical trouble on every ask)."""

    name = "broken"
    is_ensemble = False
    includes_observation_noise = True
    device = "cpu"
    last_state = None
    last_refit = True

    def fit(self, *args, **kwargs):
        from surrogates.base import FitError

        raise FitError("Cholesky failed: the matrix is not positive definite")


def test_fallbacks_are_counted_and_a_streak_warns_once_naming_the_cause(fast_settings):
    from surrogates.base import Surrogate

    Surrogate.register(_Broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt = minimize(
            quadratic,
            SPACE,
            n_trials=9,
            seed=0,
            n_initial=3,
            surrogate=_Broken(),
            progress=False,
            optimizer_settings=fast_settings,
        )
    streak = [w for w in caught if issubclass(w.category, ModelFallbackWarning)]
    assert len(streak) == 1
    assert "last 3 proposals fell back" in str(streak[0].message)
    assert "not positive definite" in str(streak[0].message)
    summary = opt.fallback_summary()
    assert (summary.n_model_phase, summary.n_fallback, summary.streak) == (6, 6, 6)
    assert "6 of 6 model proposals fell back" in summary.message()
    assert summary.to_json()["n_fallback"] == 6


# --- small guards ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [2**63, -1, 2**70])
def test_seeds_outside_the_stored_range_are_refused_by_name(seed):
    with pytest.raises(ValueError, match=rf"seed: .*{seed}"):
        Optimizer(SPACE, seed=seed)


def test_numpy_seeds_are_accepted():
    assert Optimizer(SPACE, seed=np.uint64(5)).seed == 5
    assert Optimizer(SPACE, seed=np.int64(2**62)).seed == 2**62


def test_seeds_that_differ_above_bit_48_give_different_runs():
    from bayesopt.proposal import derive_seed, sobol_point
    from bayesopt.space import Space

    space = Space(SPACE)
    a, b = 12345, 12345 + 2**48
    assert derive_seed(a, 7) != derive_seed(b, 7)
    assert sobol_point(space, a, 0) != sobol_point(space, b, 0)
    c, d = 5, 5 + 2**31  # Sobol scrambling used seed % 2**31
    assert sobol_point(space, c, 1) != sobol_point(space, d, 1)
    # seeds below 2**48 keep the streams they always had
    ss = np.random.SeedSequence([a, 7, 0])
    assert derive_seed(a, 7) == int(ss.generate_state(1, dtype=np.uint32)[0] >> 1)


def test_a_grace_period_shorter_than_two_heartbeats_is_refused(sqlite_url):
    with pytest.raises(ValueError, match=r"grace_period: 5.*heartbeat_interval=3"):
        Optimizer(SPACE, storage=sqlite_url, heartbeat_interval=3, grace_period=5)


def test_ask_batch_above_the_maximum_is_refused_before_any_work(make_optimizer):
    from bayesopt.optimizer import MAX_BATCH

    opt = make_optimizer(SPACE)
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=rf"n=1000000 is more than MAX_BATCH={MAX_BATCH}"):
        opt.ask_batch(10**6)
    assert time.monotonic() - t0 < 1 and opt.trials == []
    assert len(opt.ask_batch(MAX_BATCH)) == MAX_BATCH  # Sobol: cheap


def test_repr_and_errors_never_show_a_password():
    from bayesopt.storage.engine import mask_url

    url = "postgresql://alice:s3cret@db.example:5432/studies"
    assert "s3cret" not in mask_url(url) and "alice" in mask_url(url)
    assert mask_url(None) == "memory"
    assert mask_url("sqlite:///study.db") == "sqlite:///study.db"
