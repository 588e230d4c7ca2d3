"""The writes of ``SQLStorage`` on trials and queued points, each one committed transaction.

``TrialWrites`` is a mixin of ``SQLStorage``: it uses the storage's
transactions (``_txn``, which refuses writes to a read-only storage) and
backend flag (``_is_sqlite``). Every trial it returns carries the study's name
and key (``Trial.study``, ``Trial.study_key``), and a stored row that cannot be
decoded is returned marked (``records.row_to_trial``), never raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bayesopt.storage.errors import StaleSnapshotError
from bayesopt.storage.records import dumps, row_to_trial, stored_attrs
from bayesopt.storage.schema import queue as _queue
from bayesopt.storage.schema import studies as _studies
from bayesopt.storage.schema import trials as _trials
from bayesopt.trial import Trial, TrialState

__all__ = ["TrialWrites", "trial_is"]


class TrialWrites:
    """Creating, finishing and relaunching trials; the queue; heartbeats and stale trials."""

    _is_sqlite: bool
    display_url: str

    def _txn(self, write: bool, what: str = "write") -> AbstractContextManager[Connection]:
        raise NotImplementedError  # SQLStorage._txn

    def _lock_study(self, conn: Connection, study_id: int) -> Any:
        """Read (and on PostgreSQL lock) the study row inside a write transaction."""
        query = sa.select(_studies).where(_studies.c.id == study_id)
        if not self._is_sqlite:
            query = query.with_for_update()
        row = conn.execute(query).one_or_none()
        if row is None:
            raise ValueError(f"study: no study with id {study_id} in {self.display_url}.")
        return row

    def create_trials(
        self,
        study_id: int,
        records: Sequence[tuple[dict[str, Any], TrialState, float | None, dict[str, Any]]],
        *,
        expected_next_id: int | None = None,
        queue_ids: Sequence[int] = (),
    ) -> list[Trial]:
        """Insert trials with consecutive new ids, atomically.

        Args:
            study_id: The study.
            records: ``(params, state, value, attrs)`` per new trial.
            expected_next_id: If given, the insert happens only if no trial was
                created since the snapshot that gave this id (the proposal was
                computed against an up-to-date set of pending trials).
            queue_ids: Queued points consumed by these trials; all must still
                be queued.

        Raises:
            StaleSnapshotError: the study changed; recompute and retry.
        """
        now = time.time()
        with self._txn(write=True, what="create trials") as conn:
            study = self._lock_study(conn, study_id)
            first = int(study.next_trial_id)
            if expected_next_id is not None and first != expected_next_id:
                raise StaleSnapshotError(f"next trial id is {first}, not {expected_next_id}")
            for qid in queue_ids:
                deleted = conn.execute(
                    _queue.delete().where((_queue.c.id == qid) & (_queue.c.study_id == study_id))
                ).rowcount
                if deleted != 1:
                    raise StaleSnapshotError(f"queued point {qid} was taken by another worker")
            out = []
            for k, (params, state, value, attrs) in enumerate(records):
                attrs = {**attrs, "created_at": now}
                heartbeat = now if state is TrialState.RUNNING else None
                if state.is_finished:
                    attrs["finished_at"] = now
                conn.execute(
                    _trials.insert().values(
                        study_id=study_id,
                        trial_id=first + k,
                        state=state.value,
                        value=value,
                        params=dumps(params),
                        attrs=dumps(attrs),
                        heartbeat=heartbeat,
                    )
                )
                if heartbeat is not None:
                    attrs["heartbeat"] = heartbeat
                out.append(
                    Trial(first + k, dict(params), state, value, attrs, study.name, study.uid)
                )
            conn.execute(
                _studies.update()
                .where(_studies.c.id == study_id)
                .values(next_trial_id=first + len(records))
            )
        return out

    def _checked_row(
        self,
        conn: Any,
        study_id: int,
        trial_id: int,
        check: Callable[[Trial | None], None],
    ) -> tuple[Any, Any, Any]:
        """Lock the study, read one trial's row and let ``check`` refuse the change.

        Returns:
            ``(study row, the trial's WHERE clause, trial row)``.
        """
        study = self._lock_study(conn, study_id)
        cond = trial_is(study_id, trial_id)
        row = conn.execute(sa.select(_trials).where(cond)).one_or_none()
        check(None if row is None else row_to_trial(row, study.name, study.uid))
        assert row is not None  # check refuses an unknown trial
        return study, cond, row

    def finish_trial(
        self,
        study_id: int,
        trial_id: int,
        state: TrialState,
        value: float | None,
        attrs: Mapping[str, Any],
        check: Callable[[Trial | None], None],
    ) -> Trial:
        """Move a trial to a finished state, atomically.

        Args:
            study_id: The study.
            trial_id: The trial.
            state: The new state.
            value: The value (``None`` unless ``COMPLETE``).
            attrs: Attributes merged into the trial's attributes.
            check: Called with the current trial (or None if unknown) inside
                the transaction; raises to refuse the change (nothing is written).
        """
        with self._txn(write=True, what=f"finish trial {trial_id}") as conn:
            study, cond, row = self._checked_row(conn, study_id, trial_id, check)
            new_attrs = {**stored_attrs(row.attrs), **attrs, "finished_at": time.time()}
            conn.execute(
                _trials.update()
                .where(cond)
                .values(state=state.value, value=value, attrs=dumps(new_attrs))
            )
            row = conn.execute(sa.select(_trials).where(cond)).one()
        return row_to_trial(row, study.name, study.uid)

    def claim_trial(
        self,
        study_id: int,
        trial_id: int,
        attrs: Mapping[str, Any],
        check: Callable[[Trial | None], None],
    ) -> Trial:
        """Make a trial RUNNING again for a relaunch, atomically.

        Used to relaunch a trial under its own id (an orphan of a dead worker,
        an interrupted evaluation): its state becomes RUNNING, its value
        ``None``, ``attrs`` are merged into its attributes (``fail_reason``
        and ``finished_at`` are dropped) and its heartbeat is renewed.

        Args:
            study_id: The study.
            trial_id: The trial.
            attrs: Attributes merged into the trial's (e.g. ``worker``, ``attempts``).
            check: Called with the current trial (or None) inside the
                transaction; raises to refuse the claim (nothing is written),
                e.g. because another worker claimed it first.

        Returns:
            The claimed trial.
        """
        with self._txn(write=True, what=f"relaunch trial {trial_id}") as conn:
            study, cond, row = self._checked_row(conn, study_id, trial_id, check)
            old = stored_attrs(row.attrs)
            for key in ("fail_reason", "finished_at"):
                old.pop(key, None)
            conn.execute(
                _trials.update()
                .where(cond)
                .values(
                    state=TrialState.RUNNING.value,
                    value=None,
                    attrs=dumps({**old, **attrs}),
                    heartbeat=time.time(),
                )
            )
            row = conn.execute(sa.select(_trials).where(cond)).one()
        return row_to_trial(row, study.name, study.uid)

    def enqueue(self, study_id: int, params: Mapping[str, Any]) -> None:
        """Queue a point; the next ask of any worker returns it."""
        with self._txn(write=True, what="enqueue a point") as conn:
            self._lock_study(conn, study_id)
            conn.execute(_queue.insert().values(study_id=study_id, params=dumps(dict(params))))

    def drop_queued(self, study_id: int, queue_ids: Sequence[int]) -> int:
        """Remove queued points (e.g. ones that cannot be used); returns how many were removed.

        Ids that are not queued for this study (any more) are ignored.
        """
        ids = [int(i) for i in queue_ids]
        if not ids:
            return 0
        with self._txn(write=True, what="remove queued points") as conn:
            self._lock_study(conn, study_id)
            return int(
                conn.execute(
                    _queue.delete().where((_queue.c.study_id == study_id) & _queue.c.id.in_(ids))
                ).rowcount
            )

    def heartbeat(self, study_id: int, trial_ids: Sequence[int]) -> None:
        """Mark RUNNING trials as alive now."""
        if not trial_ids:
            return
        with self._txn(write=True, what="record a heartbeat") as conn:
            conn.execute(
                _trials.update()
                .where(
                    (_trials.c.study_id == study_id)
                    & _trials.c.trial_id.in_(list(trial_ids))
                    & (_trials.c.state == TrialState.RUNNING.value)
                )
                .values(heartbeat=time.time())
            )

    def fail_stale(self, study_id: int, grace_period: float) -> list[int]:
        """Mark RUNNING trials whose heartbeat is older than ``grace_period`` s as FAILED."""
        cutoff = time.time() - grace_period
        cond = (
            (_trials.c.study_id == study_id)
            & (_trials.c.state == TrialState.RUNNING.value)
            & (_trials.c.heartbeat < cutoff)
        )
        with self._txn(write=False) as conn:  # cheap check first: usually nothing is stale
            if conn.execute(sa.select(sa.func.count()).where(cond)).scalar_one() == 0:
                return []
        failed = []
        with self._txn(write=True, what="mark stale trials as FAILED") as conn:
            self._lock_study(conn, study_id)
            for row in conn.execute(sa.select(_trials).where(cond)).all():
                attrs = {
                    **stored_attrs(row.attrs),
                    "fail_reason": "stale",
                    "finished_at": time.time(),
                }
                conn.execute(
                    _trials.update()
                    .where(trial_is(study_id, row.trial_id))
                    .values(state=TrialState.FAILED.value, attrs=dumps(attrs))
                )
                failed.append(int(row.trial_id))
        return failed


def trial_is(study_id: int, trial_id: Any) -> Any:
    """The condition selecting one trial row."""
    return (_trials.c.study_id == study_id) & (_trials.c.trial_id == trial_id)
