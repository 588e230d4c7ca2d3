"""Durable studies in SQLite: exact values, crashes, several processes, stale trials."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time

import pytest

from bayesopt import Categorical, Float, Int, Optimizer, TrialState, minimize
from bayesopt.storage import SQLStorage
from bayesopt.storage.sql import SCHEMA_VERSION

SPACE = {"x": Float(0.0, 1.0), "y": Float(-1.0, 1.0)}


def objective(p):
    return (p["x"] - 0.3) ** 2 + (p["y"] + 0.2) ** 2


# A worker process: asks and tells on a shared SQLite study, printing each told id.
# argv: url, study, number of trials, seed of its sleeps, max sleep (s), heartbeat interval,
# size of the initial design.
WORKER = """
import random, sys, time
from acquisitions.optimize import OptimizerSettings
from bayesopt import Float, Optimizer

url, study, n, rng_seed, max_sleep, heartbeat, n_initial = sys.argv[1:8]
rng = random.Random(int(rng_seed))
opt = Optimizer(
    {"x": Float(0.0, 1.0), "y": Float(-1.0, 1.0)},
    storage=url, study=study, seed=0, n_initial=int(n_initial),
    heartbeat_interval=float(heartbeat),
    optimizer_settings=OptimizerSettings(num_restarts=2, raw_samples=64, maxiter=50),
)
for _ in range(int(n)):
    t = opt.ask()
    time.sleep(rng.uniform(0.0, float(max_sleep)))
    opt.tell(t, (t.params["x"] - 0.3) ** 2 + (t.params["y"] + 0.2) ** 2)
    print(t.id, flush=True)
opt.close()
"""

# A worker that asks one trial, prints its id, and then hangs (its heartbeat thread runs).
HANGING_WORKER = """
import sys, time
from bayesopt import Float, Optimizer

url, study = sys.argv[1:3]
opt = Optimizer(
    {"x": Float(0.0, 1.0), "y": Float(-1.0, 1.0)},
    storage=url, study=study, seed=0, n_initial=3,
    heartbeat_interval=0.2, grace_period=1.0,
)
t = opt.ask()
print(t.id, flush=True)
time.sleep(600)
"""


def _env():
    return {**os.environ, "BAYESOPT_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _spawn(script, *args, stderr_path):
    with open(stderr_path, "w") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=_env(),
        )


class _Lines:
    """Read a child's stdout lines with a timeout (a reader thread feeds a queue)."""

    def __init__(self, proc):
        self.q: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            self.q.put(line.strip())
        self.q.put(None)

    def get(self, timeout):
        line = self.q.get(timeout=timeout)
        if line is None:
            raise EOFError("the worker exited")
        return line


def _kill(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    if proc.stdout:
        proc.stdout.close()


@pytest.fixture
def procs():
    """Processes started by a test; any still alive at teardown are killed."""
    started = []
    yield started
    for p in started:
        _kill(p)


# --- schema and exactness ----------------------------------------------------------------------


def test_schema_version_table(sqlite_url, tmp_path):
    for _ in range(2):  # opening twice keeps one version row
        SQLStorage(sqlite_url).dispose()
    with sqlite3.connect(tmp_path / "study.db") as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        rows = con.execute("SELECT version FROM bo_schema_version").fetchall()
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    # only prefixed tables: a shared database (Optuna's, another application's) keeps its own
    assert tables == {"bo_schema_version", "bo_studies", "bo_trials", "bo_queue"}
    assert rows == [(SCHEMA_VERSION,)] == [(2,)]
    assert mode == "wal"


def test_a_newer_schema_is_refused(sqlite_url, tmp_path):
    SQLStorage(sqlite_url).dispose()
    with sqlite3.connect(tmp_path / "study.db") as con:
        con.execute("UPDATE bo_schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(
        RuntimeError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than .* {SCHEMA_VERSION}"
    ):
        SQLStorage(sqlite_url)


def _bits(v):
    return struct.pack("<d", v)


EXACT_VALUES = [
    0.1 + 0.2,
    1e-300,
    -1e300,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    1 / 3,
    -123456789.12345679,
    2.0**53 + 2,
]


@pytest.mark.parametrize("value", EXACT_VALUES)
def test_values_survive_storage_bit_for_bit(sqlite_url, value):
    space = {"x": Float(-1e300, 1e300), "c": Categorical(["a", 1, 1.0, True, None])}
    opt = Optimizer(space, storage=sqlite_url, seed=0, heartbeat_interval=None)
    t = opt.ask()
    opt.tell(t, value)
    x = value if abs(value) <= 1e300 else 1e300
    added = opt.add({"x": x, "c": True}, -value)
    asked_params = t.params
    opt.close()

    reopened = Optimizer.load(sqlite_url, heartbeat_interval=None)
    try:
        told, stored = reopened.trials
    finally:
        reopened.close()
    assert _bits(told.value) == _bits(value)
    assert _bits(stored.value) == _bits(-value)
    assert type(told.value) is float
    assert told.params == asked_params
    assert _bits(told.params["x"]) == _bits(asked_params["x"])
    assert _bits(stored.params["x"]) == _bits(x)
    assert stored.params["c"] is True
    assert added.params == stored.params


@pytest.mark.parametrize("choice", ["a", 1, 1.0, True, None])
def test_categorical_choices_keep_their_type_in_storage(sqlite_url, choice):
    opt = Optimizer(
        {"c": Categorical(["a", 1, 1.0, True, None]), "n": Int(0, 3)},
        storage=sqlite_url,
        seed=0,
        heartbeat_interval=None,
    )
    opt.add({"c": choice, "n": 2}, 1.0)
    opt.close()
    reopened = Optimizer.load(sqlite_url, heartbeat_interval=None)
    try:
        (t,) = reopened.trials
    finally:
        reopened.close()
    assert t.params["c"] == choice and type(t.params["c"]) is type(choice)
    assert t.params["n"] == 2 and type(t.params["n"]) is int


def test_every_ask_and_tell_is_committed_before_it_returns(sqlite_url, fast_settings):
    opt = Optimizer(
        SPACE, storage=sqlite_url, seed=0, n_initial=2, optimizer_settings=fast_settings
    )
    other = Optimizer.load(sqlite_url)
    try:
        t = opt.ask()
        (seen,) = other.trials
        assert (seen.id, seen.state, seen.params) == (0, TrialState.RUNNING, t.params)
        opt.tell(t, 0.5)
        assert other.trials[0].state is TrialState.COMPLETE and other.trials[0].value == 0.5
        opt.tell(opt.ask(), 0.25)
        model = opt.ask()
        seen = other.trials[2]
        assert seen.params == model.params and seen.state is TrialState.RUNNING
        # trials carry their JSON attributes
        assert seen.attrs["source"] == "model"
        assert seen.attrs["surrogate"] == "gp"
        assert seen.attrs["fit_seconds"] >= 0
        assert {"worker", "created_at", "heartbeat"} <= set(seen.attrs)
        assert "finished_at" in other.trials[0].attrs
    finally:
        opt.close()
        other.close()


# --- a worker killed mid-run ---------------------------------------------------------------------


def test_sigkill_mid_run_loses_no_told_trial_and_the_study_continues(
    sqlite_url, tmp_path, procs, fast_settings
):
    proc = _spawn(WORKER, sqlite_url, "crash", 200, 0, 0.05, 30, 3, stderr_path=tmp_path / "w.err")
    procs.append(proc)
    lines = _Lines(proc)
    told = []
    try:
        while len(told) < 6:
            told.append(int(lines.get(timeout=120)))
    except (queue.Empty, EOFError):
        _kill(proc)
        pytest.fail(f"worker stalled after {told}: {(tmp_path / 'w.err').read_text()[-3000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # ids printed after the 6th but before the kill are told too
    while True:
        try:
            told.append(int(lines.get(timeout=1)))
        except (queue.Empty, EOFError):
            break
    assert told == list(range(len(told)))

    opt = Optimizer.load(sqlite_url, "crash", optimizer_settings=fast_settings)
    try:
        after_crash = opt.trials
        for tid in told:
            t = after_crash[tid]
            assert t.state is TrialState.COMPLETE
            assert t.value == objective(t.params)
        # at most the one trial it was evaluating is left RUNNING
        rest = after_crash[len(told) :]
        assert len(rest) <= 1
        assert all(t.state is TrialState.RUNNING for t in rest)
    finally:
        opt.close()

    # a new worker continues the study to a total of 10 finished trials
    total = 10
    assert len(told) < total
    opt = minimize(
        objective,
        SPACE,
        n_trials=total,
        storage=sqlite_url,
        study="crash",
        seed=0,
        n_initial=3,
        progress=False,
        optimizer_settings=fast_settings,
    )
    try:
        trials = opt.trials
    finally:
        opt.close()
    assert [t.id for t in trials] == list(range(len(trials)))
    assert sum(t.state is TrialState.COMPLETE for t in trials) == total
    assert trials[: len(told)] == after_crash[: len(told)]
    assert len(trials) == len(after_crash) + total - len(told)
    new = trials[len(after_crash) :]
    assert all(t.state is TrialState.COMPLETE and t.value == objective(t.params) for t in new)


# --- several processes on one study -----------------------------------------------------------


def test_three_processes_share_one_study(sqlite_url, tmp_path, procs):
    # Half the trials model-based: with two busy cores each model-based ask of three
    # competing workers costs about a second (and some are recomputed after a conflict).
    n_each, n_initial = 8, 12
    workers = [
        _spawn(
            WORKER,
            sqlite_url,
            "shared",
            n_each,
            k,
            0.05,
            30,
            n_initial,
            stderr_path=tmp_path / f"w{k}.err",
        )
        for k in range(3)
    ]
    procs.extend(workers)
    outputs = []
    for k, w in enumerate(workers):
        try:
            out, _ = w.communicate(timeout=170)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {k} hung: {(tmp_path / f'w{k}.err').read_text()[-3000:]}")
        assert w.returncode == 0, (tmp_path / f"w{k}.err").read_text()[-3000:]
        outputs.append([int(s) for s in out.split()])

    assert all(len(ids) == n_each for ids in outputs)
    all_ids = sorted(i for ids in outputs for i in ids)
    assert all_ids == list(range(3 * n_each))  # unique ids, nothing lost

    opt = Optimizer.load(sqlite_url, "shared", heartbeat_interval=None)
    try:
        trials = opt.trials
    finally:
        opt.close()
    assert [t.id for t in trials] == list(range(3 * n_each))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(t.value == objective(t.params) for t in trials)
    # no two trials at the same point (in particular no two RUNNING at once)
    points = [(t.params["x"], t.params["y"]) for t in trials]
    assert len(set(points)) == len(points)
    assert len({t.attrs["worker"] for t in trials}) == 3
    # the initial design went to the first trials, whoever asked for them
    sources = {t.id: t.attrs["source"] for t in trials}
    assert [sources[i] for i in range(n_initial)] == ["sobol"] * n_initial
    assert all(sources[i] == "model" for i in range(n_initial, 3 * n_each))


# --- stale trials ------------------------------------------------------------------------------


def test_a_killed_workers_trial_is_failed_as_stale_and_a_late_tell_is_kept(
    sqlite_url, tmp_path, procs, fast_settings
):
    proc = _spawn(HANGING_WORKER, sqlite_url, "stale", stderr_path=tmp_path / "h.err")
    procs.append(proc)
    lines = _Lines(proc)
    try:
        tid = int(lines.get(timeout=120))
    except (queue.Empty, EOFError):
        pytest.fail((tmp_path / "h.err").read_text()[-3000:])
    assert tid == 0

    opt = Optimizer(
        SPACE,
        storage=sqlite_url,
        study="stale",
        seed=0,
        n_initial=3,
        heartbeat_interval=0.2,
        grace_period=1.0,
        optimizer_settings=fast_settings,
    )
    try:
        # while the worker lives, its heartbeat advances
        first = opt.trials[0].attrs["heartbeat"]
        time.sleep(0.7)
        assert opt.trials[0].attrs["heartbeat"] > first
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

        time.sleep(1.5)
        t1 = opt.ask()
        assert t1.id == 1
        dead = opt.trials[0]
        assert dead.state is TrialState.FAILED
        assert dead.attrs["fail_reason"] == "stale"
        assert dead.value is None

        late = opt.tell(0, 0.125)
        assert late.state is TrialState.COMPLETE and late.value == 0.125
        assert opt.trials[0].state is TrialState.COMPLETE and opt.trials[0].value == 0.125
        assert opt.trials[1].state is TrialState.RUNNING
    finally:
        opt.close()


def test_a_live_workers_heartbeat_keeps_its_trial_running(sqlite_url, fast_settings):
    kwargs = dict(
        storage=sqlite_url,
        study="live",
        seed=0,
        n_initial=3,
        heartbeat_interval=0.2,
        grace_period=1.0,
        optimizer_settings=fast_settings,
    )
    alive = Optimizer(SPACE, **kwargs)
    other = Optimizer(SPACE, **kwargs)
    try:
        t0 = alive.ask()
        time.sleep(1.6)
        t1 = other.ask()  # checks for stale trials
        assert t1.id == 1
        assert other.trials[0].state is TrialState.RUNNING
        assert other.trials[0].attrs["heartbeat"] > t0.attrs["heartbeat"] + 0.5
        done = alive.tell(t0, 0.5)
        assert done.state is TrialState.COMPLETE
        assert other.trials[0].value == 0.5
    finally:
        alive.close()
        other.close()


def test_a_bad_storage_url_is_refused_with_its_value():
    from bayesopt.storage import SQLStorage

    with pytest.raises(ValueError, match=r"storage.*'study\.db'"):
        SQLStorage("study.db")
