"""Rows as stored: corrupted rows never break reading, queued points, threads on one storage."""

from __future__ import annotations

import sqlite3
import threading
import warnings

import pytest

from bayesopt import Float, Optimizer, TrialState
from bayesopt.storage import QueuedPoint, SQLStorage

SPACE = {"x": Float(0.0, 1.0)}

# one corruption per trial row: (trial id, SQL run on the stored row, expected problem)
CORRUPTIONS = [
    (1, "UPDATE bo_trials SET params = 'not json' WHERE trial_id = 1", "params is not valid JSON"),
    (2, "UPDATE bo_trials SET attrs = '[1, 2]' WHERE trial_id = 2", "attrs is not a JSON object"),
    (3, "UPDATE bo_trials SET state = 'EXPLODED' WHERE trial_id = 3", "state 'EXPLODED' is not"),
    (4, "UPDATE bo_trials SET value = NULL WHERE trial_id = 4", "value is None in a COMPLETE"),
    (5, "UPDATE bo_trials SET value = 1e999 WHERE trial_id = 5", "value is inf in a COMPLETE"),
    (6, "UPDATE bo_trials SET value = 'abc' WHERE trial_id = 6", "value 'abc' is not a number"),
    (7, "UPDATE bo_trials SET params = '[0.5]' WHERE trial_id = 7", "params is not a JSON object"),
]


@pytest.fixture
def corrupted(sqlite_url, tmp_path):
    """A study of 9 COMPLETE trials (values 0..8) and two queued points, rows 1-7 corrupted."""
    opt = Optimizer(SPACE, storage=sqlite_url, study="s", seed=0, n_initial=50)
    for k in range(9):
        opt.tell(opt.ask(), float(k))
    opt.enqueue({"x": 0.25})
    opt.enqueue({"x": 0.75})
    opt.close()
    with sqlite3.connect(tmp_path / "study.db") as con:
        for _, sql, _ in CORRUPTIONS:
            con.execute(sql)
        con.execute("UPDATE bo_queue SET params = '{bad' WHERE id = 1")
    con.close()
    return sqlite_url


def test_corrupted_rows_are_read_with_what_is_wrong(corrupted):
    storage = SQLStorage(corrupted)
    try:
        study = storage.load_study("s")
        snap = storage.snapshot(study.id)
        trials = snap.trials
        assert [t.id for t in trials] == list(range(9))
        for tid, _, problem in CORRUPTIONS:
            assert problem in trials[tid].attrs["invalid"], (tid, trials[tid].attrs)
        assert all("invalid" not in trials[k].attrs for k in (0, 8))
        # what can be kept is kept; what cannot is empty or FAILED
        assert trials[1].params == {} and "'not json'" in trials[1].attrs["invalid"]
        assert set(trials[2].attrs) == {"invalid", "heartbeat"}  # the column is kept apart
        assert 0 <= trials[2].params["x"] <= 1
        assert trials[3].state is TrialState.FAILED and trials[3].value == 3.0
        assert trials[4].value is None and trials[5].value == float("inf")
        assert trials[6].value is None and trials[7].params == {}
        assert {(t.study, t.study_key) for t in trials} == {("s", study.uid)}
        assert storage.get_trial(study.id, 1) == trials[1]
        assert storage.trials(study.id) == trials
        # the unreadable queued point is returned with its problem, the other as stored
        assert snap.queue == [
            QueuedPoint(1, {}, snap.queue[0].problem),
            QueuedPoint(2, {"x": 0.75}, None),
        ]
        assert snap.queue[0].problem.startswith("queued point 1: params is not valid JSON")
        assert storage.drop_queued(study.id, [1, 99]) == 1
        assert storage.snapshot(study.id).queue == [QueuedPoint(2, {"x": 0.75}, None)]
        assert storage.drop_queued(study.id, []) == 0
    finally:
        storage.dispose()


def test_finishing_a_trial_with_unreadable_attrs_keeps_their_text(corrupted, tmp_path):
    with sqlite3.connect(tmp_path / "study.db") as con:
        con.execute("UPDATE bo_trials SET state = 'RUNNING', value = NULL WHERE trial_id = 8")
        con.execute("UPDATE bo_trials SET attrs = '{oops' WHERE trial_id = 8")
    con.close()
    storage = SQLStorage(corrupted)
    try:
        study = storage.load_study("s")
        seen = []
        done = storage.finish_trial(study.id, 8, TrialState.COMPLETE, 0.5, {"k": 1}, seen.append)
        assert "attrs is not valid JSON" in seen[0].attrs["invalid"]  # the check saw the problem
        assert done.value == 0.5 and done.attrs["k"] == 1 and "invalid" not in done.attrs
        assert done.attrs["unreadable_attrs"] == "{oops"
        assert storage.get_trial(study.id, 8) == done
    finally:
        storage.dispose()


def test_an_optimizer_reads_a_corrupted_study_and_goes_on(corrupted):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the Optimizer warns of skipped rows
        opt = Optimizer.load(corrupted, "s", heartbeat_interval=None)
        try:
            trials = opt.trials
            assert len(trials) == 9
            assert opt.best_trial.id == 0  # not trial 4, 5 or 6 whose value is unusable
            t = opt.ask()
            assert t.id == 9 and t.params == {"x": 0.75}  # the bad queued point was skipped
            opt.tell(t, -1.0)
            assert opt.best_trial.id == 9
        finally:
            opt.close()


# --- threads -------------------------------------------------------------------------------------


def test_threads_share_one_in_memory_optimizer():
    opt = Optimizer(SPACE, seed=0, n_initial=200)  # every ask a Sobol point: no model fits
    errors = []
    told = []

    def work():
        try:
            for _ in range(20):
                t = opt.ask()
                told.append(opt.tell(t, t.params["x"]).id)
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    try:
        assert errors == []
        trials = opt.trials
        assert sorted(told) == list(range(160)) == [t.id for t in trials]
        assert all(t.state is TrialState.COMPLETE for t in trials)
        assert all(t.value == t.params["x"] for t in trials)
        assert len({t.params["x"] for t in trials}) == 160
    finally:
        opt.close()


def test_threads_write_one_in_memory_storage():
    storage = SQLStorage(None)
    study, _ = storage.get_or_create_study(
        "s", direction="minimize", space={}, seed=0, n_initial=1
    )
    errors = []

    def work(k):
        try:
            for j in range(25):
                (t,) = storage.create_trials(
                    study.id, [({"k": k, "j": j}, TrialState.RUNNING, None, {})]
                )
                storage.heartbeat(study.id, [t.id])
                storage.finish_trial(
                    study.id, t.id, TrialState.COMPLETE, float(t.id), {}, lambda t: None
                )
                storage.snapshot(study.id)
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    try:
        assert errors == []
        trials = storage.trials(study.id)
        assert [t.id for t in trials] == list(range(200))
        assert all(t.state is TrialState.COMPLETE and t.value == t.id for t in trials)
    finally:
        storage.dispose()
