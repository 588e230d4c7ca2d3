"""The proposal lock of ``SQLStorage.ask_lock``: one worker proposes for a study at a time.

Three layers, each released when its holder dies: a ``threading.Lock`` per
(database, study) for the threads of one process (file locks do not exclude
them), a byte-range lock (``fcntl``) of a lock file beside a SQLite database
for the processes of one machine, and a PostgreSQL session advisory lock for
the machines sharing a server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

__all__ = ["PG_LOCK_KEY", "PG_SCHEMA_LOCK", "pg_advisory_lock", "sqlite_file_lock", "thread_lock"]

#: Key space of bayesopt's PostgreSQL advisory locks (``pg_advisory_lock(key, study_id)``).
PG_LOCK_KEY = 0x6261_7965  # "baye"
#: ``study_id`` argument of the advisory lock taken while the schema is created.
PG_SCHEMA_LOCK = -1

_THREAD_LOCKS: dict[tuple[str, int], threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def thread_lock(database: str, study_id: int) -> threading.Lock:
    """The in-process lock of one study of one database (the same object every call)."""
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault((database, int(study_id)), threading.Lock())


@contextmanager
def sqlite_file_lock(lock_path: str | None, study_id: int) -> Iterator[None]:
    """Hold byte ``study_id`` of ``lock_path`` (no-op without a file or without ``fcntl``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover -- not a POSIX system
        fcntl = None
    if lock_path is None or fcntl is None:
        yield  # one process: the thread lock is enough
        return
    with open(lock_path, "a+b") as fh:
        fcntl.lockf(fh, fcntl.LOCK_EX, 1, int(study_id))
        try:
            yield
        finally:
            fcntl.lockf(fh, fcntl.LOCK_UN, 1, int(study_id))


@contextmanager
def pg_advisory_lock(engine: Engine, study_id: int) -> Iterator[None]:
    """Hold the session advisory lock ``(PG_LOCK_KEY, study_id)`` on its own connection."""
    args = {"k": PG_LOCK_KEY, "s": int(study_id)}
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k, :s)"), args)
        conn.commit()  # a session lock: no transaction stays open while it is held
        try:
            yield
        finally:
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k, :s)"), args)
                conn.commit()
            except sa.exc.DBAPIError:
                pass  # the session is gone, and its lock with it
