"""Migrations from every earlier schema version to the current one.

Each version's change is additive, and each step is frozen here (it must
produce its version's layout even after later versions change the current
tables), with a test that opens a database of every earlier version.

- Version 1 (bayesopt up to commit 2f3afb1): tables ``schema_version``,
  ``studies``, ``trials``, ``queue`` without a prefix; studies have no ``uid``.
- Version 2: the tables carry the ``bo_`` prefix (``bo_schema_version``,
  ``bo_studies``, ``bo_trials``, ``bo_queue``) and ``bo_studies.uid`` is a
  uuid4 per study. Migrating from 1 renames the tables (their rows stay where
  they are), adds and fills ``uid``, writes ``bo_schema_version`` = 2, and sets
  the legacy ``schema_version`` row to 2, so that bayesopt of version 1
  refuses the migrated database ("newer than this bayesopt's 1") instead of
  creating empty tables beside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bayesopt.storage.errors import ReadOnlyStorageError, SchemaError
from bayesopt.storage.layout import check_columns, read_version

__all__ = ["LEGACY_V1", "MIGRATIONS", "legacy_version", "upgrade"]

#: Version 1's tables and columns (no prefix).
LEGACY_V1: Mapping[str, frozenset[str]] = {
    "schema_version": frozenset({"version"}),
    "studies": frozenset(
        {
            "id",
            "name",
            "direction",
            "space",
            "seed",
            "n_initial",
            "next_trial_id",
            "attrs",
            "created_at",
        }
    ),
    "trials": frozenset(
        {"study_id", "trial_id", "state", "value", "params", "attrs", "heartbeat"}
    ),
    "queue": frozenset({"id", "study_id", "params"}),
}


def legacy_version(
    conn: Connection, inspector: sa.Inspector, names: set[str], *, where: str
) -> int | None:
    """The version of an unprefixed bayesopt set of tables, or None when there is none.

    A version-1 set is recognised by ``schema_version`` and ``studies`` together
    (Optuna's databases have a ``studies`` table but no ``schema_version``);
    once recognised, it must be complete, have version 1's columns and the
    version row 1.

    Args:
        conn: A connection inside a transaction.
        inspector: ``sa.inspect(conn)``.
        names: The database's table names.
        where: The database, for messages.

    Raises:
        SchemaError: a recognised set with missing tables or columns, or whose
            version row is not exactly one row 1.
    """
    if not {"schema_version", "studies"} <= names:
        return None
    missing = sorted(set(LEGACY_V1) - names)
    if missing:
        raise SchemaError(
            f"storage: {where} has the tables schema_version and studies of bayesopt's "
            f"version 1 but not {', '.join(missing)}; it is not a bayesopt database that "
            "can be migrated. Use another database (nothing was written)."
        )
    check_columns(inspector, LEGACY_V1, where)
    version = read_version(conn, "schema_version", where, max(MIGRATIONS) + 1)
    if version != 1:
        raise SchemaError(
            f"storage: {where} has bayesopt's version-1 tables (no prefix) but their "
            f"schema_version row says {version}, and it has no bo_ tables"
            + (" (a migrated database whose bo_ tables were removed?)" if version > 1 else "")
            + "; refusing to open it (nothing was written)."
        )
    return 1


def upgrade(
    conn: Connection, version: int, target: int, *, where: str, read_only: str | None
) -> None:
    """Migrate the database from ``version`` to ``target`` step by step, in one transaction.

    Raises:
        ReadOnlyStorageError: ``read_only`` (its reason) is not None.
    """
    if read_only is not None:
        raise ReadOnlyStorageError(
            f"storage: {where} has schema version {version}; this bayesopt uses version "
            f"{target} and migrates a database once, on the first open that can write it, but "
            f"it is read-only ({read_only}). Open it once where it is writable, or with the "
            f"bayesopt that wrote it (nothing was written)."
        )
    while version < target:
        MIGRATIONS[version](conn)
        version += 1


def _v1_to_v2(conn: Connection) -> None:
    """Prefix the tables with ``bo_``, add ``bo_studies.uid``, write version 2 in both tables."""
    postgres = conn.dialect.name == "postgresql"
    for old in ("studies", "trials", "queue"):
        conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO bo_{old}")
        if postgres:
            _rename_pg_objects(conn, old)
    if postgres:
        conn.exec_driver_sql("ALTER TABLE bo_studies ADD COLUMN uid VARCHAR(36)")
    else:  # SQLite adds a NOT NULL column only with a default
        conn.exec_driver_sql(
            "ALTER TABLE bo_studies ADD COLUMN uid VARCHAR(36) NOT NULL DEFAULT ''"
        )
    ids = conn.exec_driver_sql("SELECT id FROM bo_studies ORDER BY id").scalars().all()
    for study_id in ids:
        conn.execute(
            sa.text("UPDATE bo_studies SET uid = :uid WHERE id = :id"),
            {"uid": str(uuid.uuid4()), "id": study_id},
        )
    if postgres:
        conn.exec_driver_sql("ALTER TABLE bo_studies ALTER COLUMN uid SET NOT NULL")
        conn.exec_driver_sql(
            "ALTER TABLE bo_studies ADD CONSTRAINT bo_studies_uid_key UNIQUE (uid)"
        )
    else:
        conn.exec_driver_sql("CREATE UNIQUE INDEX bo_studies_uid_key ON bo_studies (uid)")
    version = sa.Table(
        "bo_schema_version", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False)
    )
    version.create(conn)
    conn.execute(version.insert().values(version=2))
    conn.exec_driver_sql("UPDATE schema_version SET version = 2")


def _rename_pg_objects(conn: Connection, old: str) -> None:
    """Give a renamed PostgreSQL table's constraints, indexes and sequence the new prefix."""
    new = f"bo_{old}"
    constraints = conn.execute(
        sa.text("SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass)"),
        {"t": new},
    ).scalars()
    for name in list(constraints):
        if name.startswith(f"{old}_"):  # renaming a key constraint renames its index too
            conn.exec_driver_sql(f'ALTER TABLE {new} RENAME CONSTRAINT "{name}" TO "bo_{name}"')
    if old in ("studies", "queue"):  # the tables with a serial id
        seq = conn.execute(sa.text(f"SELECT pg_get_serial_sequence('{new}', 'id')")).scalar()
        if seq:
            bare = seq.rpartition(".")[2].strip('"')
            if bare.startswith(f"{old}_"):
                conn.exec_driver_sql(f'ALTER SEQUENCE {seq} RENAME TO "bo_{bare}"')


#: ``MIGRATIONS[v]`` migrates a database of version ``v`` to ``v + 1``.
MIGRATIONS: Mapping[int, Callable[[Connection], None]] = {1: _v1_to_v2}
