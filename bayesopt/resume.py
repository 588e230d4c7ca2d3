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

import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

from bayesopt.trial import Trial, TrialState

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "INTERRUPTED",
    "attempts",
    "is_interrupted",
    "is_orphan",
    "relaunch",
    "relaunch_candidates",
    "worker_name",
]

logger = logging.getLogger(__name__)

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


class _Taken(Exception):
    """The trial is no longer relaunchable (claimed or finished by another worker)."""


def _still_relaunchable(current: Trial | None) -> None:
    if current is None or not (is_orphan(current) or is_interrupted(current)):
        raise _Taken


def relaunch(
    storage: Any, study_id: int, trial_id: int, *, worker: str, max_attempts: int
) -> Trial | None:
    """Claim a relaunchable trial for this worker, or give it up after ``max_attempts``.

    Both happen in one transaction that first checks the trial is still
    relaunchable, so of several workers one claims it.

    Args:
        storage: The ``SQLStorage``.
        study_id: The study.
        trial_id: The trial.
        worker: ``worker_name()`` of the claiming process.
        max_attempts: Launches allowed, the first one included.

    Returns:
        The RUNNING trial with ``attempts`` counted, or ``None`` (given up:
        FAILED with the reason; or taken by another worker meanwhile).

    Raises:
        ValueError: no such trial.
    """
    current = storage.get_trial(study_id, trial_id)
    if current is None:
        raise ValueError(f"trial: no trial with id {trial_id} in this study.")
    n = attempts(current)
    try:
        if n < max_attempts:
            return storage.claim_trial(
                study_id, trial_id, {"worker": worker, "attempts": n + 1}, _still_relaunchable
            )
        why = current.attrs.get("fail_reason") or (
            f"its worker {current.attrs.get('worker', '?')} died"
        )
        storage.finish_trial(
            study_id,
            trial_id,
            TrialState.FAILED,
            None,
            {"fail_reason": f"gave up after {n} attempts; the last: {why}"},
            _still_relaunchable,
        )
        logger.warning("trial %d: gave up after %d attempts (%s)", trial_id, n, why)
    except _Taken:
        pass
    return None
