"""Relaunching a trial under its own id: orphans of dead workers, interrupted evaluations.

A trial is *relaunchable* when its evaluation ended without a result through no
fault of the point: it is RUNNING but the worker process that asked it, on
this host, no longer exists (a crashed sweeper or script), or it was FAILED
with a reason starting with ``"interrupted"`` (Ctrl-C in ``minimize`` or a
sweep). ``Optimizer.relaunch`` claims such a trial atomically (another worker
cannot claim it too) and counts the attempt in ``attrs["attempts"]``; a trial
whose ``max_attempts`` launches all ended without a result (say, a point that
segfaults the app each time) is FAILED with the reason instead, so a resumed
sweep cannot be stuck relaunching it for ever.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from bayesopt.trial import Trial, TrialState

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "INTERRUPTED",
    "attempts",
    "is_interrupted",
    "is_orphan",
    "relaunch_candidates",
    "worker_name",
]

#: Launches of one trial before it is given up (FAILED with the reason).
DEFAULT_MAX_ATTEMPTS = 3
#: Prefix of the ``fail_reason`` of an evaluation stopped by the user (Ctrl-C).
INTERRUPTED = "interrupted"


def worker_name() -> str:
    """``host:pid`` of this process, stored with the trials it asks."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_orphan(trial: Trial) -> bool:
    """A RUNNING trial asked by another process of this host that no longer exists."""
    if trial.state is not TrialState.RUNNING:
        return False
    host, _, pid = str(trial.attrs.get("worker", "")).rpartition(":")
    return (
        host == socket.gethostname()
        and pid.isdigit()
        and int(pid) != os.getpid()
        and not _pid_alive(int(pid))
    )


def is_interrupted(trial: Trial) -> bool:
    """A trial FAILED because its evaluation was interrupted (not because of its point)."""
    return trial.state is TrialState.FAILED and str(trial.attrs.get("fail_reason", "")).startswith(
        INTERRUPTED
    )


def attempts(trial: Trial) -> int:
    """Launches of the trial so far (1 unless it was relaunched)."""
    try:
        return max(1, int(trial.attrs.get("attempts", 1)))
    except (TypeError, ValueError):
        return 1


def relaunch_candidates(trials: Sequence[Trial]) -> list[Trial]:
    """Orphaned and interrupted trials, in id order."""
    return [
        t
        for t in sorted(trials, key=lambda t: t.id)
        if "invalid" not in t.attrs and (is_orphan(t) or is_interrupted(t))
    ]
