"""Heartbeats: a daemon thread that marks this process's RUNNING trials as alive.

A RUNNING trial whose heartbeat is older than the grace period is marked
FAILED (``stale``) by the next ask of any worker, so a dead worker's trials do
not stay pending for ever (``SQLStorage.fail_stale``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["Heartbeat"]

logger = logging.getLogger(__name__)


class Heartbeat:
    """Renews the heartbeat of the tracked trials every ``interval`` seconds.

    The thread starts with the first tracked trial; a failed write is logged,
    never raised (a heartbeat must not kill the worker).

    Args:
        storage: The ``SQLStorage`` of the study.
        study_id: The study.
        interval: Seconds between heartbeats (``None``: tracking does nothing).
    """

    def __init__(self, storage: Any, study_id: int, interval: float | None) -> None:
        self.storage = storage
        self.study_id = study_id
        self.interval = interval
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def track(self, trial_ids: Iterable[int]) -> None:
        """Keep these trials alive (until ``untrack``)."""
        if self.interval is None:
            return
        with self._lock:
            self._ids.update(trial_ids)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="bayesopt-heartbeat", daemon=True
                )
                self._thread.start()

    def untrack(self, trial_id: int) -> None:
        """Stop renewing one trial's heartbeat (it finished)."""
        with self._lock:
            self._ids.discard(trial_id)

    def stop(self) -> None:
        """Stop the thread (waits up to 5 s for it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = sorted(self._ids)
            if not ids:
                continue
            try:
                self.storage.heartbeat(self.study_id, ids)
            except Exception:  # noqa: BLE001 -- a heartbeat must never kill the worker
                logger.warning("heartbeat failed", exc_info=True)
