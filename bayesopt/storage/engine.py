"""SQLAlchemy engines for ``SQLStorage``: in-memory and file SQLite, PostgreSQL.

SQLite connections leave transactions to SQLAlchemy and open write
transactions with ``BEGIN IMMEDIATE`` (a connection executed with the
``bayesopt_write`` option), so that two writers never both read before one
of them takes the lock; a file database uses the WAL journal. A plain
``postgresql://`` URL gets the psycopg 3 driver.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = ["make_engine", "mask_url"]


def make_engine(url: str | None) -> Engine:
    """The SQLAlchemy engine of a storage URL, configured for bayesopt's transactions.

    Args:
        url: ``None`` or ``"sqlite://"`` (in memory, one process),
            ``"sqlite:///path.db"`` (WAL journal, writers take the lock up
            front) or ``"postgresql://..."`` (psycopg 3, or psycopg2).

    Returns:
        The engine.

    Raises:
        ValueError: ``url`` is not a database URL.
        ImportError: A PostgreSQL URL without a driver installed.
    """
    if url is None or url in ("sqlite://", "sqlite:///:memory:"):
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
            f"'postgresql://user@host/db', got {url!r}."
        )
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 120, "check_same_thread": False})
        _configure_sqlite(engine, wal=True)
        return engine
    if url.startswith(("postgresql://", "postgres://")):
        url = _postgres_driver(url)
    return sa.create_engine(url, pool_pre_ping=True)


def mask_url(url: str | None) -> str:
    """A storage URL fit to print: any password replaced by ``***``; ``None`` is ``"memory"``."""
    if url is None:
        return "memory"
    text = str(url)
    if "@" not in text:
        return text
    try:
        return sa.engine.make_url(text).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 -- not a SQLAlchemy URL: mask everything before the host
        scheme, _, rest = text.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"


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
        if wal:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("bayesopt_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
