"""Launches in flight (parallel launchers): one daemon thread each, waited for up to a limit.

With a parallel launcher the sweeper calls ``launcher.launch`` for one trial
per free slot, each call in a thread of its own. A launch that has not returned
``limit`` seconds after it started (``trial_timeout`` + the hard-exit delay +
``launch_margin``) is given up: its trials are handed back as timed out, the
slot is free, and whatever the launch returns later is logged and ignored. The
threads are daemon threads, so a launch that never returns (a lost cluster
job) cannot keep the sweeper's process alive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finished", "Launches"]

log = logging.getLogger(__name__)


@dataclass
class Finished:
    """A launch that returned, raised, or was given up.

    Attributes:
        trials: The trials of the launch.
        outcome: What ``launch`` returned, or the exception it raised
            (``None`` when the launch was given up at its limit).
        elapsed: Seconds from the start of the launch to now.
    """

    trials: list[Any]
    outcome: Any
    elapsed: float


@dataclass
class _Running:
    trials: list[Any]
    started: float = field(default_factory=time.monotonic)


class Launches:
    """The launches in flight.

    Args:
        limit: Seconds after which a launch is given up (``None``: wait for ever).
    """

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self._running: dict[Future, _Running] = {}

    def __len__(self) -> int:
        return len(self._running)

    def start(self, trials: Sequence[Any], launch: Callable[[], Any]) -> None:
        """Run ``launch()`` in a daemon thread for ``trials``."""
        fut: Future = Future()
        fut.set_running_or_notify_cancel()

        def target() -> None:
            try:
                fut.set_result(launch())
            except BaseException as exc:  # noqa: BLE001 -- handed to the sweep loop
                fut.set_exception(exc)

        self._running[fut] = _Running(list(trials))
        threading.Thread(target=target, name="bayesopt-launch", daemon=True).start()

    def wait(self) -> tuple[list[Finished], list[Finished]]:
        """Wait until a launch returns or reaches the limit.

        Returns:
            ``(returned, given_up)``: the launches that returned or raised, and
            those given up at the limit (``outcome`` ``None``).
        """
        timeout = None
        if self.limit is not None and self._running:
            first = min(r.started for r in self._running.values())
            timeout = max(0.0, first + self.limit - time.monotonic())
        done, _ = wait(self._running, timeout=timeout, return_when=FIRST_COMPLETED)
        now = time.monotonic()
        returned = []
        for fut in done:
            run = self._running.pop(fut)
            exc = fut.exception()
            outcome = exc if exc is not None else fut.result()
            returned.append(Finished(run.trials, outcome, now - run.started))
        given_up = []
        if self.limit is not None:
            for fut, run in list(self._running.items()):
                if now - run.started < self.limit:
                    continue
                del self._running[fut]
                given_up.append(Finished(run.trials, None, now - run.started))
                ids = [getattr(t, "id", t) for t in run.trials]
                fut.add_done_callback(
                    lambda _, ids=ids: log.warning(
                        "trial(s) %s: a launch given up at its time limit returned late; ignored",
                        ids,
                    )
                )
        return returned, given_up
