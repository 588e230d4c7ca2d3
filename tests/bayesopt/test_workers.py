"""Many worker processes on one study: SQLite on one machine, a real PostgreSQL server.

Each worker is a separate Python process running the ask/tell loop against a
shared storage URL, as users run them (one per GPU, one per SLURM task, N
Hydra sweepers with ``batch_size=1``). The PostgreSQL server comes from the
``postgres_server`` fixture (tests/postgres.py: Debian's binaries on loopback).
"""

from __future__ import annotations

import math
import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time

import pytest

from bayesopt import Float, Optimizer, TrialState

SPACE = {"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)}


def branin(p):
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


# argv: url, study, trials to run, initial design size. Prints each told id.
WORKER = """
import math, sys
from acquisitions.optimize import OptimizerSettings
from bayesopt import Float, Optimizer

url, study, n, n_initial = sys.argv[1:5]
def branin(p):
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10
opt = Optimizer(
    {"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)},
    storage=url, study=study, seed=0, n_initial=int(n_initial),
    optimizer_settings=OptimizerSettings(num_restarts=1, raw_samples=32, maxiter=30),
)
for _ in range(int(n)):
    t = opt.ask()
    opt.tell(t, branin(t.params))
    print(t.id, flush=True)
opt.close()
"""

# Opens the study, prints "ready", then asks one trial and prints its id.
READY_WORKER = """
import sys
from bayesopt import Float, Optimizer

url, study = sys.argv[1:3]
space = {"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)}
opt = Optimizer(space, storage=url, study=study, seed=0, n_initial=3)
print("ready", flush=True)
print(opt.ask().id, flush=True)
opt.close()
"""

# Asks one trial, prints its id, then hangs while its heartbeat thread runs.
HANGING_WORKER = """
import sys, time
from bayesopt import Float, Optimizer

url, study = sys.argv[1:3]
opt = Optimizer(
    {"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)},
    storage=url, study=study, seed=0, n_initial=3, heartbeat_interval=0.2, grace_period=1.5,
)
t = opt.ask()
print(t.id, flush=True)
time.sleep(600)
"""


def _spawn(script, *args, stderr_path):
    env = {**os.environ, "BAYESOPT_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with open(stderr_path, "w") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )


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


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request, tmp_path):
    """A storage URL for a study shared by processes: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres_url")


def test_four_workers_share_one_study(shared_url, tmp_path, procs):
    n_workers, n_each, n_initial = 4, 25, 10
    t0 = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = [
        _spawn(WORKER, shared_url, "four", n_each, n_initial, stderr_path=tmp_path / f"w{k}.err")
        for k in range(n_workers)
    ]
    procs.extend(workers)
    told = []
    deadline = time.monotonic() + 480  # about a minute on an idle 2-core machine
    for k, w in enumerate(workers):
        try:
            out, _ = w.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {k} hung: {(tmp_path / f'w{k}.err').read_text()[-3000:]}")
        assert w.returncode == 0, (tmp_path / f"w{k}.err").read_text()[-3000:]
        told.append([int(s) for s in out.split()])
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    print(
        f"{shared_url.split(':')[0]}: {n_workers} workers x {n_each} trials in {wall:.1f} s "
        f"wall, {cpu:.1f} s CPU of the workers"
    )

    n = n_workers * n_each
    assert [len(ids) for ids in told] == [n_each] * n_workers
    assert sorted(i for ids in told for i in ids) == list(range(n))  # unique, none lost

    opt = Optimizer.load(shared_url, "four", heartbeat_interval=None)
    try:
        trials = opt.trials
        best = opt.best_trial
    finally:
        opt.close()
    assert [t.id for t in trials] == list(range(n))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(t.value == branin(t.params) for t in trials)
    assert len({t.attrs["worker"] for t in trials}) == n_workers
    # the initial design went to the first ids, whoever asked for them; the rest is the model's
    assert [t.attrs["source"] for t in trials[:n_initial]] == ["sobol"] * n_initial
    assert all(t.attrs["source"] == "model" for t in trials[n_initial:])
    # no two trials that were RUNNING at the same time share a point
    for a in trials:
        for b in trials[a.id + 1 :]:
            overlap = (
                a.attrs["created_at"] < b.attrs["finished_at"]
                and b.attrs["created_at"] < a.attrs["finished_at"]
            )
            if overlap:
                assert a.params != b.params, (a, b)
    # and the study optimised (Branin's minimum is 0.397887): uniform random search's best of
    # 100 points is below 0.41 with probability 2.3% (200,000 simulated runs; below the old
    # bound 1.0 with 69%). Three SQLite runs of these workers reached 0.397893-0.397905
    # (0.3982 or better within their first 50 trials); this test's SQLite and PostgreSQL
    # runs were below 0.40.
    assert best.value < 0.41


class _Lines:
    """Read a child's stdout lines with a timeout (a reader thread feeds a queue)."""

    def __init__(self, proc):
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self.q.put(line.strip())
        self.q.put(None)

    def get(self, timeout):
        line = self.q.get(timeout=timeout)
        if line is None:
            raise EOFError("the worker exited")
        return line


def test_a_killed_workers_trial_goes_stale_and_a_late_tell_is_kept(shared_url, tmp_path, procs):
    """SIGKILL a worker holding a RUNNING trial: after the grace period the next ask fails it."""
    proc = _spawn(HANGING_WORKER, shared_url, "stale", stderr_path=tmp_path / "h.err")
    procs.append(proc)
    try:
        tid = int(_Lines(proc).get(timeout=120))
    except (queue.Empty, EOFError):
        pytest.fail((tmp_path / "h.err").read_text()[-3000:])
    assert tid == 0

    opt = Optimizer(
        SPACE,
        storage=shared_url,
        study="stale",
        seed=0,
        n_initial=3,
        heartbeat_interval=0.2,
        grace_period=1.5,
    )
    try:
        beat = opt.trials[0].attrs["heartbeat"]
        time.sleep(1.0)
        assert opt.trials[0].attrs["heartbeat"] > beat  # alive: its heartbeat advances
        assert opt.ask().id == 1  # a live worker's trial is not stale
        assert opt.trials[0].state is TrialState.RUNNING

        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(2.0)
        assert opt.ask().id == 2
        dead = opt.trials[0]
        assert dead.state is TrialState.FAILED
        assert dead.attrs["fail_reason"] == "stale"

        late = opt.tell(0, 1.25)  # the measurement arrived after all: it is kept
        assert late.state is TrialState.COMPLETE and late.value == 1.25
        states = [t.state for t in opt.trials]
        assert states == [TrialState.COMPLETE, TrialState.RUNNING, TrialState.RUNNING]
    finally:
        opt.close()


def test_the_ask_lock_excludes_another_process(shared_url, tmp_path, procs):
    """While this process holds the study's ask lock, another worker's ask waits for it."""
    opt = Optimizer(SPACE, storage=shared_url, study="lock", seed=0, n_initial=3)
    try:
        with opt.storage.ask_lock(opt._study_id):
            proc = _spawn(READY_WORKER, shared_url, "lock", stderr_path=tmp_path / "w.err")
            procs.append(proc)
            lines = _Lines(proc)
            assert lines.get(timeout=120) == "ready", (tmp_path / "w.err").read_text()
            with pytest.raises(queue.Empty):
                lines.get(timeout=3)  # its ask waits on the lock
            assert opt.trials == []
        assert int(lines.get(timeout=60)) == 0
        assert [t.state for t in opt.trials] == [TrialState.RUNNING]
    finally:
        opt.close()
