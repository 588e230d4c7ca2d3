"""Fault injection: SIGKILLs at random moments of a shared study and of a sweep, then a check.

Two scenarios, each followed by a consistency report:

- ``study``: two worker processes share one SQLite study (ask, evaluate,
  tell, Branin with a random evaluation time). A supervisor SIGKILLs a random
  worker at random moments (during an ask's model fit, an evaluation, a tell,
  start-up: each worker writes its phase to a file, read just before the kill)
  and starts a new one in its place. Each worker appends every tell that
  returned to an acknowledgement log (fsynced), so the check knows what was
  promised.
- ``sweep``: ``hydra/sweeper=bayesopt`` runs this file as a Hydra app (basic
  launcher) whose points with ``x > crash_above`` segfault the app, so the
  sweeper dies with them; the supervisor also SIGKILLs the sweeper at random
  moments, and reruns the same command until the sweep exits 0. The crashing
  points must end FAILED after the attempt limit instead of stalling the sweep.

The report checks, on the database itself: every acknowledged tell is stored
with its exact value; trial ids are contiguous from 0; no trial is left
RUNNING; the study holds its total of finished trials; every COMPLETE value
is the objective at its point (nothing written to the wrong trial)::

    python -m benchmarks.fault_injection                      # both, ~4 min on 2 cores
    python -m benchmarks.fault_injection study --kills 30 --trials 120
    python -m benchmarks.fault_injection sweep --kills 10 --trials 24
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STUDY = "faults"


def branin(x: float, y: float) -> float:
    """Branin on ``[-5, 10] x [0, 15]`` (minimum 0.397887)."""
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


def _space() -> dict[str, Any]:
    from bayesopt import Float

    return {"x": Float(-5.0, 10.0), "y": Float(0.0, 15.0)}


# --- the study worker ---------------------------------------------------------------------
def _phase(path: Path, name: str, told: int = 0) -> None:
    path.write_text(f"{name} {told}")


def worker(db: Path, total: int, ack: Path, phase: Path, seed: int) -> None:
    """Ask, evaluate and tell until the study holds ``total`` finished trials.

    Relaunches trials orphaned by killed workers first (``Optimizer.relaunch``).
    """
    from bayesopt import Optimizer

    _phase(phase, "startup")
    rng = random.Random(seed * 7919 + os.getpid())
    opt = Optimizer(
        _space(),
        storage=f"sqlite:///{db}",
        study=STUDY,
        seed=0,
        n_initial=6,
        heartbeat_interval=0.25,
        grace_period=1.0,
    )
    told = 0
    with open(ack, "a") as log:

        def evaluate_and_tell(trial: Any) -> None:
            nonlocal told
            _phase(phase, "evaluate", told)
            time.sleep(rng.uniform(0.1, 1.0))
            value = branin(trial.params["x"], trial.params["y"])
            _phase(phase, "tell", told)
            opt.tell(trial, value)
            told += 1
            log.write(json.dumps({"id": trial.id, "value": value}) + "\n")
            log.flush()
            os.fsync(log.fileno())

        while sum(t.state.is_finished for t in opt.trials) < total:
            _phase(phase, "relaunch", told)
            for old in opt.relaunchable():
                trial = opt.relaunch(old)
                if trial is not None:
                    evaluate_and_tell(trial)
            _phase(phase, "ask", told)
            evaluate_and_tell(opt.ask())
    _phase(phase, "done", told)
    opt.close()


# --- the consistency check ----------------------------------------------------------------
@dataclass
class Check:
    """What the database holds after the faults, and whether it is consistent."""

    trials: int = 0
    states: dict[str, int] = field(default_factory=dict)
    acknowledged: int = 0
    problems: list[str] = field(default_factory=list)
    relaunched: int = 0
    stale: int = 0
    gave_up: int = 0

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


def check_study(
    db: Path, total: int, acks: list[Path], objective: Any, study: str = STUDY
) -> Check:
    """Compare the stored study with what the workers were promised."""
    from bayesopt import Optimizer
    from bayesopt.trial import TrialState

    opt = Optimizer.load(f"sqlite:///{db}", study)
    trials = opt.trials
    opt.close()
    out = Check(trials=len(trials))
    out.states = dict(Counter(t.state.value for t in trials))
    by_id = {t.id: t for t in trials}
    if sorted(by_id) != list(range(len(trials))):
        out.problems.append(f"ids are not contiguous from 0: {sorted(by_id)}")
    running = [t.id for t in trials if t.state is TrialState.RUNNING]
    if running:
        out.problems.append(f"trials left RUNNING: {running}")
    finished = sum(t.state.is_finished for t in trials)
    if finished < total:
        out.problems.append(f"{finished} finished trials, fewer than the total {total}")
    for path in acks:
        for line in path.read_text().splitlines() if path.exists() else []:
            rec = json.loads(line)
            out.acknowledged += 1
            t = by_id.get(rec["id"])
            if t is None or t.state is not TrialState.COMPLETE or t.value != rec["value"]:
                out.problems.append(f"acknowledged tell {rec} is stored as {t}")
    for t in trials:
        if t.state is TrialState.COMPLETE:
            expected = objective(t.params)
            if t.value != expected:
                out.problems.append(f"trial {t.id} holds {t.value}, its point gives {expected}")
        if int(t.attrs.get("attempts", 1)) > 1:
            out.relaunched += 1
        reason = str(t.attrs.get("fail_reason", ""))
        out.stale += reason == "stale"
        out.gave_up += reason.startswith("gave up")
    return out


# --- the scenarios ------------------------------------------------------------------------
def _read(phase: Path) -> str:
    """The phase a worker is in (``startup`` before it wrote one)."""
    try:
        return phase.read_text().split()[0]
    except (FileNotFoundError, IndexError):
        return "startup"


def _told(phase: Path) -> int:
    """How many trials the worker has told so far."""
    try:
        return int(phase.read_text().split()[1])
    except (FileNotFoundError, IndexError, ValueError):
        return 0


def _python() -> list[str]:
    return [sys.executable, "-m", "benchmarks.fault_injection"]


def run_study(kills: int, total: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Two workers on one SQLite study, ``kills`` SIGKILLs at random moments."""
    rng = random.Random(seed)
    db = workdir / "study.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "BAYESOPT_TORCH_THREADS": "1"}
    acks: list[Path] = []
    moments: Counter[str] = Counter()

    def start(slot: int) -> tuple[subprocess.Popen, Path]:
        ack = workdir / f"ack_{len(acks)}.jsonl"
        phase = workdir / f"phase_{len(acks)}"
        acks.append(ack)
        cmd = [*_python(), "--worker", str(db), str(total), str(ack), str(phase), str(slot)]
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
        return proc, phase

    t0 = time.perf_counter()
    workers = [start(0), start(1)]
    done = 0
    while done < kills and any(p.poll() is None for p, _ in workers):
        slot = rng.randrange(len(workers))
        proc, phase = workers[slot]
        # a new worker spends seconds importing torch and botorch (its first ask): the
        # kill is armed once it has told a trial, so kills land on asks, evaluations,
        # tells and relaunches in proportion to the time a running worker spends there
        deadline = time.monotonic() + 120
        while proc.poll() is None and _told(phase) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is not None:
            continue
        moments[_read(phase)] += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done += 1
        workers[slot] = start(slot)
    for proc, _ in workers:
        proc.wait(timeout=600)
    # a last clean run relaunches what the last kills orphaned
    last = start(0)[0]
    last.wait(timeout=600)
    seconds = time.perf_counter() - t0
    check = check_study(db, total, acks, lambda p: branin(p["x"], p["y"]))
    return {
        "scenario": "study",
        "kills": done,
        "kill_moments": dict(moments),
        "workers_started": len(acks),
        "seconds": round(seconds, 1),
        **check.__dict__,
        "ok": check.ok,
    }


# --- the sweep scenario -------------------------------------------------------------------
@dataclass
class AppConf:
    """The Hydra app's config: a Branin point; points with ``x > crash_above`` segfault."""

    x: float = 0.0
    y: float = 0.0
    crash_above: float = 9.0


def app_objective(cfg: Any) -> float:
    """Branin, or a segfault of the whole process for ``x > crash_above``."""
    if cfg.x > cfg.crash_above:
        os.kill(os.getpid(), signal.SIGSEGV)
    return branin(cfg.x, cfg.y)


def _app() -> None:
    import hydra
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="fault_app", node=AppConf)
    hydra.main(version_base="1.3", config_path=None, config_name="fault_app")(app_objective)()


def run_sweep(kills: int, total: int, seed: int, workdir: Path) -> dict[str, Any]:
    """A sweep whose crashing points kill the sweeper, plus ``kills`` random SIGKILLs."""
    rng = random.Random(seed)
    db = workdir / "sweep.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "BAYESOPT_TORCH_THREADS": "1"}
    cmd = [
        *_python(),
        "--app",
        "-m",
        "hydra/sweeper=bayesopt",
        f"hydra.sweep.dir={workdir / 'multirun'}",
        f"hydra.sweeper.storage=sqlite:///{db}",
        f"hydra.sweeper.study={STUDY}",
        f"hydra.sweeper.n_trials={total}",
        "hydra.sweeper.n_initial=8",
        f"hydra.sweeper.seed={seed}",
        "x=interval(-5, 10)",
        "y=interval(0, 15)",
    ]
    t0 = time.perf_counter()
    runs = crashes = done = 0
    while runs < kills + 4 * total:  # bounded: every run makes progress
        runs += 1
        proc = subprocess.Popen(
            cmd, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if done < kills:
            try:
                proc.wait(timeout=rng.uniform(1.0, 6.0))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                done += 1
                continue
        else:
            proc.wait(timeout=900)
        if proc.returncode == 0:
            break
        crashes += proc.returncode == -signal.SIGSEGV
    seconds = time.perf_counter() - t0
    check = check_study(db, total, [], lambda p: branin(p["x"], p["y"]))
    if proc.returncode != 0:
        check.problems.append(f"the sweep did not finish: last exit status {proc.returncode}")
    return {
        "scenario": "sweep",
        "kills": done,
        "segfaults": crashes,
        "runs": runs,
        "seconds": round(seconds, 1),
        **check.__dict__,
        "ok": check.ok,
    }


def _print(report: dict[str, Any]) -> None:
    head = f"{report['scenario']}: {report['kills']} SIGKILLs"
    if "kill_moments" in report:
        head += f" (at {dict(sorted(report['kill_moments'].items()))})"
    if "segfaults" in report:
        head += f", {report['segfaults']} segfaulting jobs, {report['runs']} runs of the command"
    print(head)
    print(
        f"  {report['trials']} trials {report['states']}; {report['acknowledged']} acknowledged "
        f"tells checked; {report['relaunched']} relaunched, {report['stale']} stale, "
        f"{report['gave_up']} given up; {report['seconds']} s"
    )
    print(
        "  consistent" if report["ok"] else "  PROBLEMS:\n    " + "\n    ".join(report["problems"])
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        db, total, ack, phase, slot = argv[1:6]
        worker(Path(db), int(total), Path(ack), Path(phase), int(slot))
        return 0
    if argv[:1] == ["--app"]:
        sys.argv = [sys.argv[0], *argv[1:]]
        _app()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", nargs="?", choices=["study", "sweep", "both"], default="both")
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs (30 study, 10 sweep)")
    parser.add_argument("--trials", type=int, default=None, help="total trials (120 / 24)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the reports here")
    args = parser.parse_args(argv)
    reports = []
    with tempfile.TemporaryDirectory(prefix="bayesopt-faults-") as tmp:
        if args.scenario in ("study", "both"):
            work = Path(tmp) / "study"
            work.mkdir()
            reports.append(run_study(args.kills or 30, args.trials or 120, args.seed, work))
            _print(reports[-1])
        if args.scenario in ("sweep", "both"):
            work = Path(tmp) / "sweep"
            work.mkdir()
            reports.append(run_sweep(args.kills or 10, args.trials or 24, args.seed, work))
            _print(reports[-1])
    if args.json is not None:
        args.json.write_text(json.dumps(reports, indent=2))
    return 0 if all(r["ok"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
