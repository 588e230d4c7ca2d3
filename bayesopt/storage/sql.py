"""Studies and trials in a relational database through SQLAlchemy.

One implementation serves every backend: ``None`` is an in-memory SQLite
database (one process), ``sqlite:///path.db`` a file shared by the processes
of one machine (WAL journal, ``BEGIN IMMEDIATE`` write transactions), and
``postgresql://...`` a server shared by many machines (the study row is locked
with ``SELECT ... FOR UPDATE``). Every write is one committed transaction.

Proposals of several workers on one study are serialized by ``ask_lock``: a
lock byte of a lock file beside a SQLite database, a PostgreSQL advisory lock
on a server. Without it every worker computes a proposal from the same
snapshot, one commits and the others recompute (correct, but with N workers on
shared cores most of the CPU time goes into proposals that are thrown away).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bayesopt.storage.engine import make_engine, mask_url
from bayesopt.storage.locks import (
    PG_LOCK_KEY,
    PG_SCHEMA_LOCK,
    pg_advisory_lock,
    sqlite_file_lock,
    thread_lock,
)
from bayesopt.trial import Trial, TrialState

__all__ = ["SCHEMA_VERSION", "SQLStorage", "StaleSnapshotError", "StudyRecord"]

SCHEMA_VERSION = 1

_meta = sa.MetaData()
_version = sa.Table("schema_version", _meta, sa.Column("version", sa.Integer, nullable=False))
_studies = sa.Table(
    "studies",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(512), nullable=False, unique=True),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("space", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("n_initial", sa.Integer, nullable=False),
    sa.Column("next_trial_id", sa.Integer, nullable=False, default=0),
    sa.Column("attrs", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Double, nullable=False),
)
_trials = sa.Table(
    "trials",
    _meta,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), primary_key=True),
    sa.Column("trial_id", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.Column("heartbeat", sa.Double, nullable=True),
)
_queue = sa.Table(
    "queue",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
)


class StaleSnapshotError(RuntimeError):
    """The study changed since the snapshot a proposal was computed from."""


@dataclass(frozen=True)
class StudyRecord:
    """A stored study's identity and settings."""

    id: int
    name: str
    direction: str
    space: dict[str, Any]
    seed: int
    n_initial: int
    attrs: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """A consistent read of a study: its trials, the next id and the queue."""

    trials: list[Trial]
    next_trial_id: int
    queue: list[tuple[int, dict[str, Any]]]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False)


def _row_to_trial(row: Any) -> Trial:
    attrs = json.loads(row.attrs)
    if row.heartbeat is not None:
        attrs["heartbeat"] = row.heartbeat
    return Trial(
        id=int(row.trial_id),
        params=json.loads(row.params),
        state=TrialState(row.state),
        value=row.value,
        attrs=attrs,
    )


class SQLStorage:
    """Studies and trials in SQLite (memory or file) or PostgreSQL.

    Args:
        url: ``None`` (in memory), ``"sqlite:///path.db"`` or ``"postgresql://..."``.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._is_sqlite = self.engine.dialect.name == "sqlite"
        self._memory_lock = threading.Lock()
        # absolute now: a later chdir (Hydra jobs) must not move the lock file
        db = self.engine.url.database if self._is_sqlite else None
        self._lock_path = f"{os.path.abspath(db)}.asklock" if db and db != ":memory:" else None
        self._init_schema()

    @property
    def display_url(self) -> str:
        """The URL fit for messages and files: any password masked, ``"memory"`` for None."""
        return mask_url(self.url)

    # --- plumbing ---------------------------------------------------------------
    @contextmanager
    def _txn(self, write: bool) -> Iterator[Connection]:
        with self.engine.connect().execution_options(bayesopt_write=write) as conn:
            with conn.begin():
                yield conn

    def _lock_study(self, conn: Connection, study_id: int) -> Any:
        """Read (and on PostgreSQL lock) the study row inside a write transaction."""
        query = sa.select(_studies).where(_studies.c.id == study_id)
        if not self._is_sqlite:
            query = query.with_for_update()
        row = conn.execute(query).one_or_none()
        if row is None:
            raise ValueError(f"study: no study with id {study_id}.")
        return row

    def _init_schema(self) -> None:
        with self._txn(write=True) as conn:
            if self.engine.dialect.name == "postgresql":
                # concurrent CREATE TABLEs collide in PostgreSQL's catalog, and two first
                # workers would both insert a schema version: one initialises at a time
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k, :s)"),
                    {"k": PG_LOCK_KEY, "s": PG_SCHEMA_LOCK},
                )
            _meta.create_all(conn)
            version = conn.execute(sa.select(_version.c.version)).scalar_one_or_none()
            if version is None:
                conn.execute(_version.insert().values(version=SCHEMA_VERSION))
            elif version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"storage: the database has schema version {version}, newer than this "
                    f"bayesopt's {SCHEMA_VERSION}; upgrade bayesopt."
                )

    def dispose(self) -> None:
        """Close the database connections."""
        self.engine.dispose()

    @contextmanager
    def ask_lock(self, study_id: int) -> Iterator[None]:
        """Hold the study's proposal lock: one worker computes a proposal at a time.

        Other writes (tells, heartbeats, queued points) do not take it. The lock
        dies with its holder: a SQLite lock file's byte lock (``fcntl``) is
        released by the kernel, a PostgreSQL advisory lock with the session.
        Databases without such a lock (or systems without ``fcntl``) rely on the
        snapshot check of ``create_trials`` alone.
        """
        if self._is_sqlite and self._lock_path is None:  # in memory: this object's alone
            in_process = self._memory_lock
        else:
            in_process = thread_lock(self._lock_path or str(self.engine.url), study_id)
        with in_process:
            if self._is_sqlite:
                with sqlite_file_lock(self._lock_path, study_id):
                    yield
            elif self.engine.dialect.name == "postgresql":
                with pg_advisory_lock(self.engine, study_id):
                    yield
            else:
                yield

    # --- studies ----------------------------------------------------------------
    def load_study(self, name: str) -> StudyRecord | None:
        """Return the stored study ``name``, or None."""
        with self._txn(write=False) as conn:
            row = conn.execute(sa.select(_studies).where(_studies.c.name == name)).one_or_none()
        return None if row is None else self._record(row)

    def get_or_create_study(
        self,
        name: str,
        *,
        direction: str,
        space: Mapping[str, Any],
        seed: int,
        n_initial: int,
        attrs: Mapping[str, Any] | None = None,
    ) -> tuple[StudyRecord, bool]:
        """Return ``(study, created)``; an existing study is returned unchanged."""
        existing = self.load_study(name)
        if existing is not None:
            return existing, False
        try:
            with self._txn(write=True) as conn:
                conn.execute(
                    _studies.insert().values(
                        name=name,
                        direction=direction,
                        space=_dumps(dict(space)),
                        seed=int(seed),
                        n_initial=int(n_initial),
                        next_trial_id=0,
                        attrs=_dumps(dict(attrs or {})),
                        created_at=time.time(),
                    )
                )
        except IntegrityError:  # another process created it first: it is not ours
            created = False
        else:
            created = True
        study = self.load_study(name)
        assert study is not None
        return study, created

    def study_names(self) -> list[str]:
        """Names of every stored study."""
        with self._txn(write=False) as conn:
            return list(conn.execute(sa.select(_studies.c.name).order_by(_studies.c.id)).scalars())

    @staticmethod
    def _record(row: Any) -> StudyRecord:
        return StudyRecord(
            id=int(row.id),
            name=row.name,
            direction=row.direction,
            space=json.loads(row.space),
            seed=int(row.seed),
            n_initial=int(row.n_initial),
            attrs=json.loads(row.attrs),
        )

    # --- reads ------------------------------------------------------------------
    def snapshot(self, study_id: int) -> Snapshot:
        """Trials, next trial id and queued points, read in one transaction."""
        with self._txn(write=False) as conn:
            next_id = conn.execute(
                sa.select(_studies.c.next_trial_id).where(_studies.c.id == study_id)
            ).scalar_one()
            rows = conn.execute(
                sa.select(_trials)
                .where(_trials.c.study_id == study_id)
                .order_by(_trials.c.trial_id)
            ).all()
            queue = conn.execute(
                sa.select(_queue.c.id, _queue.c.params)
                .where(_queue.c.study_id == study_id)
                .order_by(_queue.c.id)
            ).all()
        return Snapshot(
            trials=[_row_to_trial(r) for r in rows],
            next_trial_id=int(next_id),
            queue=[(int(q.id), json.loads(q.params)) for q in queue],
        )

    def trials(self, study_id: int) -> list[Trial]:
        """Every trial of the study, ordered by id."""
        return self.snapshot(study_id).trials

    def get_trial(self, study_id: int, trial_id: int) -> Trial | None:
        """One trial, or None."""
        with self._txn(write=False) as conn:
            row = conn.execute(
                sa.select(_trials).where(
                    (_trials.c.study_id == study_id) & (_trials.c.trial_id == trial_id)
                )
            ).one_or_none()
        return None if row is None else _row_to_trial(row)

    # --- writes -----------------------------------------------------------------
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
        with self._txn(write=True) as conn:
            study = self._lock_study(conn, study_id)
            first = int(study.next_trial_id)
            if expected_next_id is not None and first != expected_next_id:
                raise StaleSnapshotError(f"next trial id is {first}, not {expected_next_id}")
            for qid in queue_ids:
                deleted = conn.execute(_queue.delete().where(_queue.c.id == qid)).rowcount
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
                        params=_dumps(params),
                        attrs=_dumps(attrs),
                        heartbeat=heartbeat,
                    )
                )
                if heartbeat is not None:
                    attrs["heartbeat"] = heartbeat
                out.append(Trial(first + k, dict(params), state, value, attrs))
            conn.execute(
                _studies.update()
                .where(_studies.c.id == study_id)
                .values(next_trial_id=first + len(records))
            )
        return out

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
        with self._txn(write=True) as conn:
            self._lock_study(conn, study_id)
            row = conn.execute(
                sa.select(_trials).where(
                    (_trials.c.study_id == study_id) & (_trials.c.trial_id == trial_id)
                )
            ).one_or_none()
            current = None if row is None else _row_to_trial(row)
            check(current)
            assert row is not None
            new_attrs = {**json.loads(row.attrs), **attrs, "finished_at": time.time()}
            conn.execute(
                _trials.update()
                .where((_trials.c.study_id == study_id) & (_trials.c.trial_id == trial_id))
                .values(state=state.value, value=value, attrs=_dumps(new_attrs))
            )
        if row.heartbeat is not None:
            new_attrs["heartbeat"] = row.heartbeat
        return Trial(trial_id, json.loads(row.params), state, value, new_attrs)

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
        now = time.time()
        with self._txn(write=True) as conn:
            self._lock_study(conn, study_id)
            cond = (_trials.c.study_id == study_id) & (_trials.c.trial_id == trial_id)
            row = conn.execute(sa.select(_trials).where(cond)).one_or_none()
            check(None if row is None else _row_to_trial(row))
            assert row is not None
            old = json.loads(row.attrs)
            for key in ("fail_reason", "finished_at"):
                old.pop(key, None)
            new_attrs = {**old, **attrs}
            conn.execute(
                _trials.update()
                .where(cond)
                .values(
                    state=TrialState.RUNNING.value,
                    value=None,
                    attrs=_dumps(new_attrs),
                    heartbeat=now,
                )
            )
        return Trial(
            trial_id,
            json.loads(row.params),
            TrialState.RUNNING,
            None,
            {**new_attrs, "heartbeat": now},
        )

    def enqueue(self, study_id: int, params: Mapping[str, Any]) -> None:
        """Queue a point; the next ask of any worker returns it."""
        with self._txn(write=True) as conn:
            self._lock_study(conn, study_id)
            conn.execute(_queue.insert().values(study_id=study_id, params=_dumps(dict(params))))

    def heartbeat(self, study_id: int, trial_ids: Sequence[int]) -> None:
        """Mark RUNNING trials as alive now."""
        if not trial_ids:
            return
        with self._txn(write=True) as conn:
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
        with self._txn(write=True) as conn:
            self._lock_study(conn, study_id)
            for row in conn.execute(sa.select(_trials).where(cond)).all():
                attrs = {
                    **json.loads(row.attrs),
                    "fail_reason": "stale",
                    "finished_at": time.time(),
                }
                conn.execute(
                    _trials.update()
                    .where((_trials.c.study_id == study_id) & (_trials.c.trial_id == row.trial_id))
                    .values(state=TrialState.FAILED.value, attrs=_dumps(attrs))
                )
                failed.append(int(row.trial_id))
        return failed
