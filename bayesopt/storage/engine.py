"""SQLAlchemy engines for ``SQLStorage``: in-memory and file SQLite, PostgreSQL.

SQLite connections leave transactions to SQLAlchemy and open write
transactions with ``BEGIN IMMEDIATE`` (a connection executed with the
``bayesopt_write`` option), so that two writers never both read before one
of them takes the lock; a file database is switched to the WAL journal
(``enable_wal``) once its tables passed the checks, so that a refused file is
left as it was. A file that cannot be written is opened read-only (SQLite's
``mode=ro``, and ``immutable=1`` when its directory cannot be written either
and no ``-wal``/``-shm`` file exists). A plain ``postgresql://`` URL gets the
psycopg 3 driver; a URL without a password leaves it to libpq
(``PGPASSWORD``, the ``.pgpass`` file or ``PGPASSFILE``).
"""

from __future__ import annotations

import os
import re
import sqlite3
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "enable_wal",
    "is_memory",
    "make_engine",
    "mask_url",
    "sqlite_file",
    "sqlite_read_only_reason",
]

_MEMORY_URLS = ("sqlite://", "sqlite:///:memory:")


def is_memory(url: str | None) -> bool:
    """Whether ``url`` is the in-memory database."""
    return url is None or url in _MEMORY_URLS


def sqlite_file(url: str | None) -> str | None:
    """The absolute path of a SQLite file URL; None for memory, URI forms and other databases."""
    if is_memory(url) or not isinstance(url, str) or not url.startswith("sqlite"):
        return None
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    db = parsed.database
    if not db or db == ":memory:" or parsed.query.get("uri") or db.startswith("file:"):
        return None
    return os.path.abspath(db)


def sqlite_read_only_reason(path: str) -> str | None:
    """Why this process cannot write the SQLite file ``path`` (None: it can).

    SQLite writes its journal (``-wal``, ``-shm`` or ``-journal``) beside the
    file, so a file whose directory cannot be written is read-only too.
    """
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return f"the file {path} is not writable by this user"
    directory = os.path.dirname(path) or "."
    if os.path.isdir(directory) and not os.access(directory, os.W_OK):
        return (
            f"its directory {directory} is not writable by this user, and SQLite writes "
            "its journal there"
        )
    return None


def make_engine(url: str | None, *, read_only: bool = False) -> Engine:
    """The SQLAlchemy engine of a storage URL, configured for bayesopt's transactions.

    Args:
        url: ``None`` or ``"sqlite://"`` (in memory, one process),
            ``"sqlite:///path.db"`` (writers take the lock up front; WAL journal
            after ``enable_wal``) or ``"postgresql://..."`` (psycopg 3, or psycopg2).
        read_only: Open a SQLite file with ``mode=ro`` (and ``immutable=1`` when
            its directory cannot be written and it has no ``-wal``/``-shm`` file).

    Returns:
        The engine.

    Raises:
        ValueError: ``url`` is not a database URL.
        ImportError: A PostgreSQL URL without a driver installed.
    """
    if is_memory(url):
        engine = sa.create_engine(
            "sqlite://",
            poolclass=sa.pool.StaticPool,
            connect_args={"check_same_thread": False},
        )
        _configure_sqlite(engine, wal=False)
        return engine
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(
            f"storage: expected None or a database URL such as 'sqlite:///study.db' or "
            f"'postgresql://user@host/db', got {mask_url(url)!r}."
        )
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 120, "check_same_thread": False}}
        if read_only and path is not None:
            kwargs["creator"] = _read_only_creator(path)
        engine = sa.create_engine(url, **kwargs)
        _configure_sqlite(engine, wal=True)
        return engine
    if url.startswith(("postgresql://", "postgres://")):
        url = _postgres_driver(url)
    return sa.create_engine(url, pool_pre_ping=True)


def enable_wal(engine: Engine) -> None:
    """Switch a SQLite file to the WAL journal (persistent; a no-op when it already is)."""
    raw = engine.raw_connection()  # outside SQLAlchemy's transaction: the mode needs none
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA journal_mode = WAL")
        cur.close()
    finally:
        raw.close()


def mask_url(url: str | None) -> str:
    """A storage URL fit to print: any password replaced by ``***``; ``None`` is ``"memory"``.

    Masks the password of ``user:password@host`` and a ``password=`` query
    parameter; text that is not a URL is masked up to its last ``@``.
    """
    if url is None:
        return "memory"
    text = str(url)
    if "@" not in text and "password" not in text.lower():
        return text
    try:
        parsed = sa.engine.make_url(text)
    except Exception:  # noqa: BLE001 -- not a SQLAlchemy URL: mask everything before the host
        text = re.sub(r"(password=)[^&]*", r"\1***", text, flags=re.IGNORECASE)
        if "@" not in text:
            return text
        if "://" in text:
            scheme, _, rest = text.partition("://")
            return f"{scheme}://***@{rest.rpartition('@')[2]}"
        return f"***@{text.rpartition('@')[2]}"
    query = {k: ("***" if k.lower() == "password" else v) for k, v in parsed.query.items()}
    shown = parsed.update_query_dict(query).render_as_string(hide_password=True)
    return shown.replace("=%2A%2A%2A", "=***")


def _read_only_creator(path: str) -> Any:
    """A connection factory opening ``path`` read-only through a SQLite URI."""
    uri = f"file:{quote(path)}?mode=ro"
    directory = os.path.dirname(path) or "."
    journal = any(os.path.exists(path + ext) for ext in ("-wal", "-shm"))
    if not os.access(directory, os.W_OK) and not journal:
        # without -shm in a directory it cannot write, SQLite cannot open a WAL file
        # read-only; with nothing pending in a -wal, the file alone is the database
        uri += "&immutable=1"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=120, check_same_thread=False)

    return connect


def _postgres_driver(url: str) -> str:
    """Use psycopg 3 (the ``postgres`` extra) for a plain ``postgresql://`` URL."""
    import importlib.util

    rest = url.split("://", 1)[1]
    if importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    if importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2://{rest}"
    raise ImportError(
        f"storage: {url.split('@')[-1]!r} needs a PostgreSQL driver; install the extra with "
        "`pip install 'bayesopt[postgres]'` (psycopg 3)."
    )


def _configure_sqlite(engine: Engine, wal: bool) -> None:
    """Let SQLAlchemy, not the driver, open transactions; writers take the lock up front."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 120000")
        cur.execute("PRAGMA foreign_keys = ON")
        if wal:  # the journal mode itself is set once, by enable_wal
            cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("bayesopt_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
