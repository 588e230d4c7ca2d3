"""Studies and trials in a relational database through SQLAlchemy.

One implementation serves every backend: ``None`` is an in-memory SQLite
database (one process; its transactions are serialized, so threads may share
it), ``sqlite:///path.db`` a file shared by the processes of one machine (WAL
journal, ``BEGIN IMMEDIATE`` write transactions), and ``postgresql://...`` a
server shared by many machines (the study row is locked with ``SELECT ... FOR
UPDATE``). Every write is one committed transaction. The tables are described
in ``bayesopt.storage.schema`` (opening, checks) and ``migrations``.

Proposals of several workers on one study are serialized by ``ask_lock``: a
lock byte of a lock file beside a SQLite database, a PostgreSQL advisory lock
on a server. Without it every worker computes a proposal from the same
snapshot, one commits and the others recompute (correct, but with N workers on
shared cores most of the CPU time goes into proposals that are thrown away).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bayesopt.storage import engine as _engine
from bayesopt.storage.access import read_only_error, read_only_reason
from bayesopt.storage.errors import ReadOnlyStorageError, SchemaError, StaleSnapshotError
from bayesopt.storage.locks import (
    PG_LOCK_KEY,
    PG_SCHEMA_LOCK,
    pg_advisory_lock,
    sqlite_file_lock,
    thread_lock,
)
from bayesopt.storage.records import (
    QueuedPoint,
    Snapshot,
    StudyRecord,
    decode_object,
    dumps,
    row_to_queued,
    row_to_trial,
    validate_study_name,
)
from bayesopt.storage.schema import SCHEMA_VERSION, open_schema
from bayesopt.storage.schema import queue as _queue
from bayesopt.storage.schema import studies as _studies
from bayesopt.storage.schema import trials as _trials
from bayesopt.storage.writes import TrialWrites, trial_is
from bayesopt.trial import Trial

__all__ = [
    "SCHEMA_VERSION",
    "QueuedPoint",
    "ReadOnlyStorageError",
    "SQLStorage",
    "SchemaError",
    "Snapshot",
    "StaleSnapshotError",
    "StudyRecord",
]


class SQLStorage(TrialWrites):
    """Studies and trials in SQLite (memory or file) or PostgreSQL.

    Args:
        url: ``None`` (in memory), ``"sqlite:///path.db"`` or ``"postgresql://..."``
            (a password may stay out of the URL: libpq reads ``PGPASSWORD`` or
            the ``.pgpass`` file).
        read_only: ``None`` (default): open a SQLite file read-only when this
            process cannot write it or its directory; ``True``: open read-only
            (every write raises ``ReadOnlyStorageError``); ``False``: open for
            writing.
        create: ``False`` refuses a SQLite file that does not exist instead of
            creating an empty database (for reopening a stored study).

    Attributes:
        url: The URL as given (may hold a password: print ``display_url``).
        read_only: Whether writes are refused.
        read_only_reason: Why (``None`` when writable).

    Raises:
        ValueError: ``url`` is not a database URL.
        FileNotFoundError: a SQLite file that does not exist (``create=False``,
            or ``read_only``), or whose directory does not exist.
        SchemaError: the database's tables are not bayesopt's, or of a newer
            or unknown schema version (nothing was written).
        ReadOnlyStorageError: a read-only database of an earlier schema
            version (it must be migrated once by a writable open).
    """

    def __init__(
        self, url: str | None = None, *, read_only: bool | None = None, create: bool = True
    ) -> None:
        self.url = url
        path = _engine.sqlite_file(url)
        self.read_only_reason = read_only_reason(url, path, read_only, create)
        self.read_only = self.read_only_reason is not None
        self.engine = _engine.make_engine(url, read_only=self.read_only)
        self._is_sqlite = self.engine.dialect.name == "sqlite"
        self._memory_lock = threading.Lock()
        # the in-memory engine has one connection for every thread: one transaction at a time
        memory = self._is_sqlite and _engine.is_memory(url)
        self._serial: Any = threading.RLock() if memory else contextlib.nullcontext()
        # absolute now: a later chdir (Hydra jobs) must not move the lock file
        self._lock_path = None if path is None else f"{path}.asklock"
        try:
            self._has_tables = self._init_schema()
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def display_url(self) -> str:
        """The URL fit for messages and files: any password masked, ``"memory"`` for None."""
        return _engine.mask_url(self.url)

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"SQLStorage({self.display_url!r}{mode})"

    # --- plumbing ---------------------------------------------------------------
    @contextmanager
    def _txn(self, write: bool, what: str = "write") -> Iterator[Connection]:
        """One transaction; ``write`` takes SQLite's write lock up front.

        Raises:
            ReadOnlyStorageError: ``write`` on a read-only storage (``what`` is
                the refused operation), or the database refused a write.
        """
        if write and self.read_only:
            raise read_only_error(self.display_url, what, self.read_only_reason)
        with self._serial:
            try:
                with self.engine.connect().execution_options(bayesopt_write=write) as conn:
                    with conn.begin():
                        yield conn
            except sa.exc.OperationalError as exc:
                if "readonly database" in str(exc):  # SQLite: the file became read-only
                    reason = "the database refused a write: " + str(exc.orig)
                    raise read_only_error(self.display_url, what, reason) from exc
                raise

    def _init_schema(self) -> bool:
        """Check, create or migrate the tables (``schema.open_schema``); whether they exist."""
        where = self.display_url
        # a write transaction even when read-only: one consistent read, nothing written
        with self.engine.connect().execution_options(bayesopt_write=not self.read_only) as conn:
            with conn.begin():
                if self.engine.dialect.name == "postgresql" and not self.read_only:
                    # concurrent CREATE TABLEs collide in PostgreSQL's catalog, and two first
                    # workers would both insert a schema version: one initialises at a time
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:k, :s)"),
                        {"k": PG_LOCK_KEY, "s": PG_SCHEMA_LOCK},
                    )
                ready = open_schema(conn, where=where, read_only=self.read_only_reason)
        if self._is_sqlite and self._lock_path is not None and not self.read_only:
            _engine.enable_wal(self.engine)  # only now: a refused file is left as it was
        return ready

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

        Raises:
            ReadOnlyStorageError: the storage is read-only (a proposal creates a trial).
        """
        if self.read_only:
            raise read_only_error(self.display_url, "ask for a new trial", self.read_only_reason)
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
        """Return the stored study ``name``, or None.

        Raises:
            ValueError: ``name`` is not a valid study name (``validate_study_name``).
        """
        validate_study_name(name)
        if not self._has_tables:
            return None
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
        """Return ``(study, created)``; an existing study is returned unchanged.

        Raises:
            ValueError: ``name`` is not a valid study name.
            ReadOnlyStorageError: the study does not exist and the storage is read-only.
        """
        existing = self.load_study(name)
        if existing is not None:
            return existing, False
        try:
            with self._txn(write=True, what=f"create the study {name!r}") as conn:
                conn.execute(
                    _studies.insert().values(
                        name=name,
                        uid=str(uuid.uuid4()),
                        direction=direction,
                        space=dumps(dict(space)),
                        seed=int(seed),
                        n_initial=int(n_initial),
                        next_trial_id=0,
                        attrs=dumps(dict(attrs or {})),
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
        if not self._has_tables:
            return []
        with self._txn(write=False) as conn:
            return list(conn.execute(sa.select(_studies.c.name).order_by(_studies.c.id)).scalars())

    def _record(self, row: Any) -> StudyRecord:
        space, problem = decode_object(row.space, "space")
        attrs, attrs_problem = decode_object(row.attrs, "attrs")
        if problem or attrs_problem:
            raise SchemaError(
                f"storage: study {row.name!r} in {self.display_url} cannot be read: "
                f"{problem or attrs_problem}."
            )
        return StudyRecord(
            id=int(row.id),
            name=row.name,
            direction=row.direction,
            space=space,
            seed=int(row.seed),
            n_initial=int(row.n_initial),
            attrs=attrs,
            uid=row.uid,
        )

    # --- reads ------------------------------------------------------------------
    def _study_row(self, conn: Connection, study_id: int) -> Any:
        row = conn.execute(
            sa.select(_studies.c.name, _studies.c.uid, _studies.c.next_trial_id).where(
                _studies.c.id == study_id
            )
        ).one_or_none()
        if row is None:
            raise ValueError(f"study: no study with id {study_id} in {self.display_url}.")
        return row

    def snapshot(self, study_id: int) -> Snapshot:
        """Trials, next trial id and queued points, read in one transaction.

        A row that cannot be used as stored is returned marked, never raised:
        ``Trial.attrs["invalid"]`` or ``QueuedPoint.problem`` says what is wrong.
        """
        with self._txn(write=False) as conn:
            study = self._study_row(conn, study_id)
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
            trials=[row_to_trial(r, study.name, study.uid) for r in rows],
            next_trial_id=int(study.next_trial_id),
            queue=[row_to_queued(q) for q in queue],
        )

    def trials(self, study_id: int) -> list[Trial]:
        """Every trial of the study, ordered by id."""
        return self.snapshot(study_id).trials

    def get_trial(self, study_id: int, trial_id: int) -> Trial | None:
        """One trial, or None."""
        with self._txn(write=False) as conn:
            study = self._study_row(conn, study_id)
            row = conn.execute(
                sa.select(_trials).where(trial_is(study_id, trial_id))
            ).one_or_none()
        return None if row is None else row_to_trial(row, study.name, study.uid)
