"""Reading a database's layout before trusting it: expected columns and the version row.

Shared by the current schema's checks (``schema``) and the recognition of
earlier versions (``migrations``); nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bayesopt.storage.errors import SchemaError

__all__ = ["check_columns", "read_version"]


def check_columns(
    inspector: sa.Inspector, expected: Mapping[str, frozenset[str]], where: str
) -> None:
    """Refuse tables that lack expected columns, naming each table and its missing columns.

    Raises:
        SchemaError: at least one table lacks a column.
    """
    problems = []
    for table, columns in sorted(expected.items()):
        have = {c["name"] for c in inspector.get_columns(table)}
        missing = sorted(columns - have)
        if missing:
            problems.append(f"table {table!r} lacks column(s) {', '.join(map(repr, missing))}")
    if problems:
        raise SchemaError(
            f"storage: {where} has tables with bayesopt's names but another layout: "
            + "; ".join(problems)
            + ". They belong to another application or were altered; use another database "
            "(or PostgreSQL schema). Nothing was written."
        )


def read_version(conn: Connection, table: str, where: str, newest: int) -> int:
    """The single version row of ``table``; refuses none, several, or a non-positive one.

    Args:
        conn: A connection inside a transaction.
        table: The version table (one integer column ``version``).
        where: The database, for messages.
        newest: This bayesopt's schema version, for messages.

    Raises:
        SchemaError: the table does not hold exactly one positive integer.
    """
    rows = [r[0] for r in conn.execute(sa.text(f"SELECT version FROM {table}")).all()]
    if len(rows) != 1:
        found = "no row" if not rows else f"{len(rows)} rows ({', '.join(map(repr, rows))})"
        raise SchemaError(
            f"storage: {where}: table {table} should hold one schema version, it holds "
            f"{found}; refusing to open a database whose version is unknown "
            "(nothing was written)."
        )
    version = rows[0]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SchemaError(
            f"storage: {where}: table {table} holds the schema version {version!r}, which no "
            f"bayesopt wrote (versions start at 1, this bayesopt's is {newest}); "
            "refusing to open it (nothing was written)."
        )
    return version
