"""Per-trial time limits (``trial_timeout``): stop an evaluation that runs too long.

What can be stopped depends on where the evaluation runs:

- In the main thread of a process (``minimize``, a Hydra job in the basic
  launcher, a joblib/loky worker, a submitit job), ``SIGALRM`` raises
  ``TrialTimeoutError`` inside the evaluation: Python code stops at once,
  ``time.sleep`` included; a long call into C code (a BLAS routine) stops when
  it returns. The alarm repeats every second until the evaluation ends, so a
  handler that swallows the first one does not keep it running, and a value
  returned after the limit is not used.
- When the evaluation runs in a process of its own (joblib, submitit),
  ``hard_exit_after`` also ends that process if the evaluation still runs
  that many seconds after the limit (C code that never returns).
- Elsewhere (another thread, or a platform without ``SIGALRM``) the function
  runs in a daemon thread and is *abandoned* at the limit: the caller gets
  ``TrialTimeoutError`` and goes on, the thread cannot be killed and finishes
  in the background.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TIMEOUT_EXIT_CODE", "TrialTimeoutError", "call_with_timeout", "check_timeout"]

#: Exit status of a process ended by ``hard_exit_after`` (124, as coreutils' ``timeout``).
TIMEOUT_EXIT_CODE = 124
#: Seconds between repeated alarms after the limit.
_REPEAT = 1.0


class TrialTimeoutError(TimeoutError):
    """An evaluation ran longer than its ``trial_timeout``."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"timeout: the evaluation ran longer than trial_timeout={timeout:g} s")
        self.timeout = timeout

    def __reduce__(self) -> tuple[type, tuple[float]]:
        # rebuilt from the limit, not the message: a job process sends it back pickled
        return type(self), (self.timeout,)


def check_timeout(value: Any, label: str = "trial_timeout") -> float | None:
    """Validate a time limit: ``None`` or a positive number of seconds.

    Raises:
        ValueError: naming ``label`` and the value.
    """
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"{label}: expected a positive number of seconds or None, got {value!r}.")
    return float(value)


def call_with_timeout(
    fn: Callable[..., Any],
    *args: Any,
    timeout: float | None,
    hard_exit_after: float | None = None,
    **kwargs: Any,
) -> Any:
    """``fn(*args, **kwargs)``, stopped with ``TrialTimeoutError`` after ``timeout`` seconds.

    Args:
        fn: The evaluation.
        *args: Its positional arguments.
        timeout: Seconds allowed (``None``: no limit, ``fn`` is simply called).
        hard_exit_after: If given, a watchdog ends this whole process with
            ``os._exit(TIMEOUT_EXIT_CODE)`` when ``fn`` still runs this many
            seconds after the limit. Only for a process that runs nothing else
            (a launcher's job process), never the caller's own program.
        **kwargs: Its keyword arguments.

    Returns:
        What ``fn`` returned within the limit.

    Raises:
        TrialTimeoutError: the limit passed.
    """
    if timeout is None:
        return fn(*args, **kwargs)
    watchdog = _start_watchdog(timeout + hard_exit_after) if hard_exit_after is not None else None
    try:
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
            return _with_alarm(fn, args, kwargs, timeout)
        return _in_thread(fn, args, kwargs, timeout)
    finally:
        if watchdog is not None:
            watchdog.set()


def _with_alarm(fn: Callable[..., Any], args: tuple, kwargs: dict, timeout: float) -> Any:
    expired = False

    def on_alarm(signum: int, frame: Any) -> None:
        nonlocal expired
        expired = True
        raise TrialTimeoutError(timeout)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout, _REPEAT)
    try:
        value = fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if expired:  # fn swallowed the alarm: its late value is not used
        raise TrialTimeoutError(timeout)
    return value


def _in_thread(fn: Callable[..., Any], args: tuple, kwargs: dict, timeout: float) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=target, name="bayesopt-trial", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TrialTimeoutError(timeout)
    if "error" in box:
        raise box["error"]
    return box["value"]


def _start_watchdog(after: float) -> threading.Event:
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + after
        if not done.wait(max(0.0, deadline - time.monotonic())):
            os._exit(TIMEOUT_EXIT_CODE)

    threading.Thread(target=watch, name="bayesopt-timeout-watchdog", daemon=True).start()
    return done
