"""One job of a sweep: the task wrapper the launcher runs, and what a job's outcome means.

``TrialTask`` wraps the app's task function for every launcher: the job runs
under ``hydra.sweeper.trial_timeout`` (``bayesopt.timeout``), and a job that
calls ``sys.exit`` becomes a failed job instead of ending the sweep (with the
basic launcher the job runs inside the sweeper's process). ``objective_value``
turns a job's return into a value or a failure reason; ``launch_failure``
names the failure of a launch that raised (a job process that crashed or was
killed).

Imported by ``BayesOptSweeper.setup`` and, through pickling, by job processes:
nothing heavy here (no torch, no SQLAlchemy).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from bayesopt.timeout import TrialTimeoutError, call_with_timeout

__all__ = [
    "HARD_EXIT_AFTER",
    "JobExitError",
    "TrialTask",
    "launch_failure",
    "objective_value",
]

#: Seconds after ``trial_timeout`` at which a job running in a process of its
#: own (joblib, submitit, Ray) is ended with ``os._exit`` if the alarm did not stop it.
HARD_EXIT_AFTER = 10.0


class JobExitError(RuntimeError):
    """The task function called ``sys.exit`` (or raised ``SystemExit``): the job gave no value."""


class TrialTask:
    """The task function a launcher runs: the app's own, under the sweep's rules.

    Picklable (launchers send it to job processes). In the sweeper's own process
    (the basic launcher) the time limit is an alarm in the main thread; in a
    process of its own the job is also ended ``HARD_EXIT_AFTER`` seconds after
    the limit if the alarm could not stop it (a call stuck in C code).

    Args:
        task_function: The app's task function (``cfg -> value``).
        trial_timeout: Seconds a job may run (``None``: no limit).
        sweeper_pid: The sweeper's process id (default: this process).
    """

    def __init__(
        self,
        task_function: Callable[[Any], Any],
        trial_timeout: float | None = None,
        sweeper_pid: int | None = None,
    ) -> None:
        self.task_function = task_function
        self.trial_timeout = trial_timeout
        self.sweeper_pid = os.getpid() if sweeper_pid is None else sweeper_pid

    def __call__(self, cfg: Any) -> Any:
        """Run the task function on a job's config.

        Raises:
            TrialTimeoutError: the job ran longer than ``trial_timeout``.
            JobExitError: the task function called ``sys.exit``.
        """
        own_process = os.getpid() != self.sweeper_pid
        try:
            return call_with_timeout(
                self.task_function,
                cfg,
                timeout=self.trial_timeout,
                hard_exit_after=HARD_EXIT_AFTER if own_process else None,
            )
        except SystemExit as exc:
            raise JobExitError(f"job called sys.exit({exc.code!r})") from None


def objective_value(ret: JobReturn, objective_key: str | None) -> tuple[float | None, str]:
    """The objective of a finished job, or ``(None, reason)`` when the trial failed.

    A job that raised, exited, ran out of time, returned a non-number or a
    non-finite number is a failure; a dict (or DictConfig) return is read at
    ``objective_key``.
    """
    if ret.status != JobStatus.COMPLETED:
        try:
            ret.return_value  # re-raises the job's exception  # noqa: B018
        except (JobExitError, TrialTimeoutError) as exc:
            return None, str(exc)
        except Exception as exc:  # noqa: BLE001 -- any exception of the task is a failed trial
            return None, f"job raised {type(exc).__name__}: {exc}"
        return None, f"job status {ret.status}"
    value = ret.return_value
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        if objective_key is None:
            return None, (
                f"job returned a dict with keys {sorted(map(str, value))}; set "
                "hydra.sweeper.objective_key to the key of the objective"
            )
        if objective_key not in value:
            return None, (
                f"job returned a dict without objective_key {objective_key!r} "
                f"(keys: {sorted(map(str, value))})"
            )
        value = value[objective_key]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()  # numpy scalars, one-element tensors/arrays
        except (ValueError, RuntimeError):
            pass
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None, f"job returned {value!r} ({type(value).__name__}), not a number"
    value = float(value)
    if not math.isfinite(value):
        return None, f"job returned the non-finite value {value!r}"
    return value, ""


def launch_failure(exc: BaseException, elapsed: float, trial_timeout: float | None) -> str:
    """The failure reason of the jobs of a launch that raised instead of returning.

    A launcher raises when a job's process died (a segfault, ``os._exit``, the
    ``HARD_EXIT_AFTER`` watchdog): after ``trial_timeout`` seconds that is a
    timeout, otherwise a crash.

    Args:
        exc: What the launch raised.
        elapsed: Seconds the launch ran.
        trial_timeout: The sweep's ``trial_timeout`` (``None``: no limit).
    """
    if isinstance(exc, SystemExit):
        return f"job called sys.exit({exc.code!r})"
    what = f"{type(exc).__name__}: {_short(exc)}"
    if trial_timeout is not None and elapsed >= trial_timeout:
        return (
            f"timeout: the job did not return within trial_timeout={trial_timeout:g} s "
            f"(launcher raised {what})"
        )
    return f"launcher raised {what}"


def _short(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
