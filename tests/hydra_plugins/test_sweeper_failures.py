"""The sweeper under failure: exits, crashes, time limits, Ctrl-C, the failure rate, data from
the database, and secrets.

Real Hydra multiruns of the quadratic test app (``bo_sweep_app.py``): in
subprocesses where a job kills its process or the test signals the sweeper,
in-process otherwise. Every sweep sets ``n_initial`` = ``n_trials`` (no model
fit) unless the model is the point.
"""

from __future__ import annotations

import json
import logging
import pickle
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from test_bayesopt_sweeper import APP, _env, _records, _run, _study, _sweep_in_process

from bayesopt import Optimizer, TrialState
from bayesopt.fallbacks import FallbackSummary
from bayesopt.resume import DEFAULT_MAX_ATTEMPTS
from bayesopt.storage.engine import mask_url
from bayesopt.timeout import TrialTimeoutError
from hydra_plugins.bayesopt_sweeper._grammar import parse_search_space
from hydra_plugins.bayesopt_sweeper._impl import SweepFailedError
from hydra_plugins.bayesopt_sweeper._jobs import JobExitError, TrialTask, objective_value
from hydra_plugins.bayesopt_sweeper._launches import Launches
from hydra_plugins.bayesopt_sweeper._results import write_results
from hydra_plugins.bayesopt_sweeper._settings import (
    DEFAULT_LAUNCH_MARGIN,
    SweepSettings,
    trial_timeout_option,
)
from hydra_plugins.bayesopt_sweeper.config import BayesOptSweeperConf

C, F, R = TrialState.COMPLETE, TrialState.FAILED, TrialState.RUNNING
STUDY = "bo_sweep_app"
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]  # 2: joblib runs n_jobs=1 in-process
SUBMITIT = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=4"]


def _base(sweep: Path, record: Path, n: int) -> list[str]:
    """A sweep of ``n`` space-filling trials (no model fit) that records its jobs."""
    return [
        f"hydra.sweep.dir={sweep}",
        f"record={record}",
        f"hydra.sweeper.n_trials={n}",
        f"hydra.sweeper.n_initial={n}",
    ]


def _states(trials) -> list[TrialState]:
    return [t.state for t in trials]


# --- unit: the task wrapper, job outcomes, options -------------------------------------
def _exits(cfg):
    sys.exit(cfg)


def _sleeps(cfg):
    time.sleep(cfg)


def test_the_task_wrapper_turns_sys_exit_into_a_job_failure_and_pickles():
    task = pickle.loads(pickle.dumps(TrialTask(_exits, trial_timeout=None)))
    for code in (0, 1, "bye"):
        with pytest.raises(JobExitError, match=rf"job called sys.exit\({code!r}\)"):
            task(code)
    tic = time.monotonic()
    with pytest.raises(TrialTimeoutError):
        TrialTask(_sleeps, trial_timeout=0.2)(30)  # this process's main thread: an alarm
    assert time.monotonic() - tic < 5


def test_job_exits_and_timeouts_give_their_own_reasons_also_after_pickling():
    for exc, reason in [
        (JobExitError("job called sys.exit(3)"), "job called sys.exit(3)"),
        (TrialTimeoutError(2.0), "timeout: the evaluation ran longer than trial_timeout=2 s"),
    ]:
        back = pickle.loads(pickle.dumps(exc))  # job processes send them back pickled
        assert type(back) is type(exc) and str(back) == str(exc)
        ret = JobReturn(status=JobStatus.FAILED, _return_value=back)
        assert objective_value(ret, None) == (None, reason)


def test_new_options_are_checked_and_named():
    assert BayesOptSweeperConf.max_attempts == DEFAULT_MAX_ATTEMPTS
    assert BayesOptSweeperConf.launch_margin == DEFAULT_LAUNCH_MARGIN
    assert BayesOptSweeperConf.trial_timeout is None and BayesOptSweeperConf.timeout is None
    s = SweepSettings.from_options({"trial_timeout": 2, "timeout": 60, "max_attempts": 5})
    assert (s.trial_timeout, s.timeout, s.max_attempts) == (2.0, 60.0, 5)
    for options, name in [
        ({"trial_timeout": 0}, "hydra.sweeper.trial_timeout"),
        ({"trial_timeout": "1h"}, "hydra.sweeper.trial_timeout"),
        ({"timeout": -1}, "hydra.sweeper.timeout"),
        ({"max_attempts": 0}, "hydra.sweeper.max_attempts"),
        ({"launch_margin": -1}, "hydra.sweeper.launch_margin"),
        ({"max_failure_rate": 2}, "hydra.sweeper.max_failure_rate"),
    ]:
        with pytest.raises(ValueError, match=name) as info:
            SweepSettings.from_options(options)
        assert repr(next(iter(options.values()))) in str(info.value)
    with pytest.raises(ValueError, match="hydra.sweeper.trial_timeout"):
        trial_timeout_option({"trial_timeout": float("nan")})


def test_a_launch_past_its_limit_is_given_up_and_its_late_return_ignored(caplog):
    launches = Launches(limit=0.3)
    release = threading.Event()
    launches.start(["slow"], lambda: release.wait(30) and "late")
    launches.start(["fast"], lambda: "on time")
    tic = time.monotonic()
    returned, given_up = launches.wait()
    while not given_up:
        more, given_up = launches.wait()
        returned += more
    assert [(f.trials, f.outcome) for f in returned] == [(["fast"], "on time")]
    assert [(f.trials, f.outcome) for f in given_up] == [(["slow"], None)]
    assert 0.3 <= given_up[0].elapsed < 5 and time.monotonic() - tic < 5
    assert len(launches) == 0  # the slot is free
    with caplog.at_level(logging.WARNING):
        release.set()
        deadline = time.monotonic() + 5
        while "returned late" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "['slow']: a launch given up at its time limit returned late; ignored" in caplog.text


# --- 1. jobs that exit or crash -------------------------------------------------------
def test_a_segfaulting_job_is_given_up_after_max_attempts_and_the_sweep_completes(tmp_path):
    """Basic launcher: each run dies with the job; the 4th run gives it up and finishes."""
    sweep, record = tmp_path / "sweep", tmp_path / "jobs.jsonl"
    cmd = [*_base(sweep, record, 3), "segv_at=1"]
    for attempt in (1, 2, 3):
        proc = _run(APP, *cmd, cwd=tmp_path, check=False)
        assert proc.returncode == -signal.SIGSEGV, proc.stderr[-3000:]
        trials = _study(sweep, STUDY)
        assert _states(trials) == [C, R]
        assert trials[1].attrs.get("attempts", 1) == attempt  # counted before the launch
    _run(APP, *cmd, cwd=tmp_path)
    trials = _study(sweep, STUDY)
    assert _states(trials) == [C, F, C]
    assert trials[1].attrs["fail_reason"].startswith("gave up after 3 attempts")
    assert [r["job"] for r in _records(record)] == [0, 1, 1, 1, 2]  # same id each time
    res = OmegaConf.load(sweep / "optimization_results.yaml")
    assert (res.n_complete, res.n_failed, res.n_running) == (2, 1, 0)


@pytest.mark.parametrize("code", [0, 1])
def test_sys_exit_in_a_job_is_a_failed_trial_with_the_basic_launcher(
    hydra_sweep_runner, tmp_path, code
):
    sweep = _sweep_in_process(
        hydra_sweep_runner,
        tmp_path,
        "exit_at=1",
        f"exit_code={code}",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_initial=3",
    )
    with sweep:
        trials = _study(Path(sweep.temp_dir), STUDY)
    assert _states(trials) == [C, F, C]
    assert trials[1].attrs["fail_reason"] == f"job called sys.exit({code})"


@pytest.mark.parametrize("launcher", [JOBLIB, SUBMITIT], ids=["joblib", "submitit_local"])
def test_exiting_and_segfaulting_jobs_are_failed_trials_with_process_launchers(tmp_path, launcher):
    sweep, record = tmp_path / "sweep", tmp_path / "jobs.jsonl"
    _run(
        APP,
        *_base(sweep, record, 4),
        *launcher,
        "exit_at=1",
        "segv_at=2",
        "hydra.sweeper.max_failure_rate=1.0",
        cwd=tmp_path,
    )
    trials = _study(sweep, STUDY)
    assert _states(trials) == [C, F, F, C]
    assert trials[1].attrs["fail_reason"] == "job called sys.exit(1)"
    assert trials[2].attrs["fail_reason"].startswith("launcher raised")
    assert [r["job"] for r in _records(record)] == [0, 1, 2, 3]


# --- 2. time limits ---------------------------------------------------------------------
@pytest.mark.parametrize("launcher", [[], JOBLIB], ids=["basic", "joblib"])
def test_a_job_that_sleeps_for_ever_fails_at_trial_timeout(tmp_path, launcher):
    sweep, record = tmp_path / "sweep", tmp_path / "jobs.jsonl"
    tic = time.monotonic()
    _run(
        APP,
        *_base(sweep, record, 3),
        *launcher,
        "hang_at=1",
        "hydra.sweeper.trial_timeout=2",
        cwd=tmp_path,
    )
    wall = time.monotonic() - tic
    trials = _study(sweep, STUDY)
    assert _states(trials) == [C, F, C]
    reason = trials[1].attrs["fail_reason"]
    assert reason == "timeout: the evaluation ran longer than trial_timeout=2 s"
    took = trials[1].attrs["finished_at"] - trials[1].attrs["created_at"]
    assert 2 <= took < 15  # stopped by the alarm, not by the 10 s hard exit
    assert wall < 150


def test_timeout_stops_launching_new_trials(hydra_sweep_runner, tmp_path):
    """``timeout`` is for the whole sweep: after it, nothing new; the job in flight finishes."""
    sweep = _sweep_in_process(
        hydra_sweep_runner,
        tmp_path,
        "hang_at=0",
        f"record={tmp_path / 'jobs.jsonl'}",
        "hydra.sweeper.trial_timeout=2.5",
        "hydra.sweeper.timeout=1.5",
        "hydra.sweeper.n_trials=5",
        "hydra.sweeper.n_initial=5",
    )
    with sweep:
        trials = _study(Path(sweep.temp_dir), STUDY)
    assert _states(trials) == [F]
    assert trials[0].attrs["fail_reason"].startswith("timeout")


# --- 3. n_trials and max_failure_rate -----------------------------------------------------
def test_after_a_failure_rate_stop_the_fixed_app_resumes_to_n_trials(hydra_sweep_runner, tmp_path):
    common = [
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.n_initial=6",
        "hydra.sweeper.max_failure_rate=0.5",
    ]
    broken = _sweep_in_process(
        hydra_sweep_runner, tmp_path, *common, "fail=raise", "fail_above=-1"
    )
    with pytest.raises(SweepFailedError, match="3 of 3 finished trials failed"):
        with broken:
            pass
    fixed = _sweep_in_process(hydra_sweep_runner, tmp_path, *common)  # same study, fixed task
    with fixed:
        pass
    opt = Optimizer.load(f"sqlite:///{tmp_path / 'study.db'}", STUDY)
    try:
        assert _states(opt.trials) == [F] * 3 + [C] * 3
    finally:
        opt.close()


# --- 4. Ctrl-C ----------------------------------------------------------------------------
def test_ctrl_c_fails_the_trial_in_flight_as_interrupted_and_the_rerun_relaunches_it(tmp_path):
    sweep, record = tmp_path / "sweep", tmp_path / "jobs.jsonl"
    cmd = [*_base(sweep, record, 3), "hang_at=1", "hang_once=true"]
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(APP), "-m", *cmd],
            cwd=tmp_path,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 180
            while not record.with_suffix(".hung").exists():  # job 1 is sleeping
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode != 0
    assert "interrupted (KeyboardInterrupt): trial(s) [1]" in (tmp_path / "out.txt").read_text()
    trials = _study(sweep, STUDY)
    assert _states(trials) == [C, F]
    assert trials[1].attrs["fail_reason"] == "interrupted (KeyboardInterrupt)"

    _run(APP, *cmd, cwd=tmp_path)  # the rerun: job 1 again under its id, then the rest
    jobs = _records(record)
    assert [r["job"] for r in jobs] == [0, 1, 1, 2]
    assert (jobs[2]["x"], jobs[2]["y"]) == (jobs[1]["x"], jobs[1]["y"])
    trials = _study(sweep, STUDY)
    assert _states(trials) == [C, C, C]
    assert trials[1].attrs["attempts"] == 2


# --- 5. nothing from the database runs code -----------------------------------------------
def test_a_stored_study_with_another_space_is_refused(hydra_sweep_runner, tmp_path):
    storage = f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}"
    first = _sweep_in_process(
        hydra_sweep_runner,
        tmp_path,
        storage,
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.n_initial=1",
    )
    with first:
        pass
    other = _sweep_in_process(hydra_sweep_runner, tmp_path, storage, "x=interval(0, 2)")
    with pytest.raises(ValueError, match="different setup.*'x'"):
        with other:
            pass


CHOICES = [
    "a,b",
    "x'y",
    "]",
    "${oc.env:HOME}",
    "${now:%H}",
    "\\${now:%H}",
    "back\\slash",
    "+opt={_target_: shutil.copyfile, src: a, dst: b}",
]
#: How the choices above are written on the command line.
CHOICE_OVERRIDE = (
    "s=choice('a,b', \"x'y\", ']', '${oc.env:HOME}', '${now:%H}', '\\${now:%H}', "
    "'back\\slash', '+opt={_target_: shutil.copyfile, src: a, dst: b}')"
)


def test_each_choice_string_reaches_the_job_verbatim(hydra_sweep_runner, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    space = parse_search_space(None, [CHOICE_OVERRIDE]).params
    assert list(space["s"].choices) == CHOICES
    opt = Optimizer(space, storage=url, study=STUDY, seed=0, n_initial=len(CHOICES))
    for choice in CHOICES:  # the sweep's asks take these first, in order
        opt.enqueue({"s": choice})
    opt.close()
    record = tmp_path / "jobs.jsonl"
    sweep = _sweep_in_process(
        hydra_sweep_runner,
        tmp_path,
        CHOICE_OVERRIDE,
        "x=0.5",
        "y=0.5",  # fixed: s is the only parameter
        f"record={record}",
        f"hydra.sweeper.storage={url}",
        f"hydra.sweeper.n_trials={len(CHOICES)}",
        f"hydra.sweeper.n_initial={len(CHOICES)}",
    )
    with sweep:
        pass
    assert [r["s"] for r in _records(record)] == CHOICES


def _table(db: sqlite3.Connection, name: str) -> str:
    """Our table ``name`` as the schema spells it (``bo_`` prefix from schema version 2)."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return f"bo_{name}" if f"bo_{name}" in tables else name


def test_crafted_rows_in_the_study_are_never_launched(hydra_sweep_runner, tmp_path):
    """A queued point and trials to relaunch, written into the database by someone else."""
    db_path, record = tmp_path / "study.db", tmp_path / "jobs.jsonl"
    source, target = tmp_path / "source.txt", tmp_path / "copied.txt"
    source.write_text("secret")
    evil_opt = f"{{_target_: shutil.copyfile, src: '{source}', dst: '{target}'}}"
    common = [
        f"hydra.sweeper.storage=sqlite:///{db_path}",
        f"record={record}",
        "opt=choice({a: 1}, {a: 2})",  # override text passed to jobs as is: a dict node
    ]
    first = _sweep_in_process(
        hydra_sweep_runner,
        tmp_path,
        *common,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_initial=4",
    )
    with first:
        pass
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    worker = f"{socket.gethostname()}:{dead.pid}"  # a sweeper of this host that died
    evil = {"x": 0.5, "y": 0.5, "opt": evil_opt}
    with sqlite3.connect(db_path) as db:
        (study_id,) = db.execute(
            f"SELECT id FROM {_table(db, 'studies')} WHERE name = ?", (STUDY,)
        ).fetchone()
        for params in ({"x": 1e9, "evil": "yes"}, evil):
            db.execute(
                f"INSERT INTO {_table(db, 'queue')} (study_id, params) VALUES (?, ?)",
                (study_id, json.dumps(params)),
            )
        for tid, state, attrs in [
            (100, R, {"worker": worker}),  # an orphan
            (101, F, {"worker": worker, "fail_reason": "interrupted (KeyboardInterrupt)"}),
            (102, R, {"worker": worker, "evil": "x"}),
        ]:
            params = evil if tid != 102 else {"x": 1e9, "y": 0.5, "opt": "{a:1}", "evil": "yes"}
            db.execute(
                f"INSERT INTO {_table(db, 'trials')} (study_id, trial_id, state, value, params, "
                "attrs, heartbeat) VALUES (?, ?, ?, NULL, ?, ?, ?)",
                (study_id, tid, state.value, json.dumps(params), json.dumps(attrs), time.time()),
            )
    second = _sweep_in_process(
        hydra_sweep_runner,
        tmp_path,
        *common,
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_initial=4",
    )
    with pytest.warns(RuntimeWarning, match="stored"), second:
        pass
    assert not target.exists()  # no stored override was instantiated
    jobs = _records(record)
    assert len(jobs) == 4  # trials 0-3, nothing else
    assert all(0 <= r["x"] <= 1 and r["opt"] in ({"a": 1}, {"a": 2}) for r in jobs)
    opt = Optimizer.load(f"sqlite:///{db_path}", STUDY)
    try:
        with pytest.warns(RuntimeWarning):
            trials = {t.id: t for t in opt.trials}
    finally:
        opt.close()
    assert [trials[i].state for i in range(4)] == [C] * 4
    assert (trials[100].state, trials[101].state, trials[102].state) == (R, F, R)  # untouched
    assert all("invalid" in trials[i].attrs for i in (100, 101, 102))


# --- 6. loud, and no secrets -------------------------------------------------------------
def test_the_results_file_counts_fallbacks(hydra_sweep_runner, tmp_path):
    sweep = _sweep_in_process(
        hydra_sweep_runner,
        tmp_path,
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_initial=2",  # the third trial comes from the model
    )
    with sweep:
        res = OmegaConf.load(Path(sweep.temp_dir) / "optimization_results.yaml")
    fallbacks = OmegaConf.to_container(res.fallbacks)
    assert fallbacks == {**fallbacks, "n_model_phase": 1, "n_fallback": 0, "n_rescued": 0}


def test_results_and_log_mask_the_storage_password(tmp_path, caplog):
    url = "postgresql://user:secret@127.0.0.1:1/db"
    summary = FallbackSummary(
        n_model_phase=4, n_fallback=3, streak=3, reasons={"GP fit failed: not PSD": 3}
    )
    opt = SimpleNamespace(  # stands in for the Optimizer only; its storage is not reachable
        trials=[],
        best_trial=None,
        study_name="s",
        direction="minimize",
        storage=SimpleNamespace(url=url, display_url=mask_url(url)),
        fallback_summary=lambda: summary,
    )
    with caplog.at_level(logging.INFO):
        written = write_results(tmp_path, opt, n_trials=5, fixed_overrides=["a=1"])
    text = (tmp_path / "optimization_results.yaml").read_text()
    assert "secret" not in text and "secret" not in caplog.text
    assert written["storage"] == "postgresql://user:***@127.0.0.1:1/db"
    assert OmegaConf.load(tmp_path / "optimization_results.yaml").fallbacks.n_fallback == 3
    assert "3 of 4 model proposals fell back to space-filling points" in caplog.text
    assert "3x GP fit failed: not PSD" in caplog.text  # the summary's message, as a warning
