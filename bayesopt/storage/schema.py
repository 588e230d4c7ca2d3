"""bayesopt's tables (schema version 2, prefix ``bo_``) and the checks that open a database.

Migration policy: each schema version's change is additive (new tables, new
columns with a value for every existing row), and each earlier version has a
tested migration to the current one, run in one transaction on the first
open by a newer bayesopt. ``LAYOUTS`` freezes the columns of every version so
that a database of an earlier version is recognised before it is migrated.

Opening a database (``open_schema``) reads before it writes: every check
passes before any table is created or migrated, and a refused database is
left exactly as it was (the whole opening is one transaction, rolled back on
a refusal). Tables of other applications may share the database: only
tables named ``bo_*`` are bayesopt's (and version 1's unprefixed set, which is
migrated), so an Optuna database gets bayesopt's tables beside its own.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bayesopt.storage import migrations
from bayesopt.storage.errors import SchemaError
from bayesopt.storage.layout import check_columns, read_version

__all__ = [
    "LAYOUTS",
    "SCHEMA_VERSION",
    "open_schema",
    "queue",
    "studies",
    "trials",
    "version_table",
]

#: The schema version this bayesopt writes.
SCHEMA_VERSION = 2
#: The first version whose tables carry the ``bo_`` prefix.
FIRST_PREFIXED_VERSION = 2

meta = sa.MetaData()
version_table = sa.Table(
    "bo_schema_version", meta, sa.Column("version", sa.Integer, nullable=False)
)
studies = sa.Table(
    "bo_studies",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(512), nullable=False, unique=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("space", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("n_initial", sa.Integer, nullable=False),
    sa.Column("next_trial_id", sa.Integer, nullable=False, default=0),
    sa.Column("attrs", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Double, nullable=False),
)
trials = sa.Table(
    "bo_trials",
    meta,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("bo_studies.id"), primary_key=True),
    sa.Column("trial_id", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.Column("heartbeat", sa.Double, nullable=True),
)
queue = sa.Table(
    "bo_queue",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("bo_studies.id"), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
)

#: The columns of every table of every prefixed version (frozen: never edit a past entry).
LAYOUTS: Mapping[int, Mapping[str, frozenset[str]]] = {
    2: {
        "bo_schema_version": frozenset({"version"}),
        "bo_studies": frozenset(
            {
                "id",
                "name",
                "uid",
                "direction",
                "space",
                "seed",
                "n_initial",
                "next_trial_id",
                "attrs",
                "created_at",
            }
        ),
        "bo_trials": frozenset(
            {"study_id", "trial_id", "state", "value", "params", "attrs", "heartbeat"}
        ),
        "bo_queue": frozenset({"id", "study_id", "params"}),
    },
}

_OURS = frozenset(name for layout in LAYOUTS.values() for name in layout)


def open_schema(conn: Connection, *, where: str, read_only: str | None) -> bool:
    """Check the database's tables; create or migrate them unless ``read_only``.

    Run inside one write transaction (PostgreSQL: after taking the schema
    lock), so that a refusal rolls everything back.

    Args:
        conn: A connection inside a transaction.
        where: The database, for messages (password masked).
        read_only: ``None`` when tables may be created or migrated, else why not.

    Returns:
        Whether bayesopt's tables are there (False only when ``read_only`` and
        the database has none: it holds no study).

    Raises:
        SchemaError: a version newer than this bayesopt's, an unknown, missing
            or repeated version row, a table with one of bayesopt's names and
            a foreign layout, or an incomplete set of tables.
        ReadOnlyStorageError: an earlier version that must be migrated, but
            ``read_only``.
    """
    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names())
    present = sorted(names & _OURS)
    if present:
        version = _prefixed_version(conn, inspector, names, where)
        if version < SCHEMA_VERSION:
            migrations.upgrade(conn, version, SCHEMA_VERSION, where=where, read_only=read_only)
        return True
    legacy = migrations.legacy_version(conn, inspector, names, where=where)
    if legacy is not None:
        migrations.upgrade(conn, legacy, SCHEMA_VERSION, where=where, read_only=read_only)
        return True
    if read_only is not None:
        return False
    meta.create_all(conn)
    conn.execute(version_table.insert().values(version=SCHEMA_VERSION))
    return True


def _prefixed_version(
    conn: Connection, inspector: sa.Inspector, names: set[str], where: str
) -> int:
    """The version of a database with ``bo_`` tables, after checking their layout."""
    version = SCHEMA_VERSION  # the layout to check against when there is no version table
    if version_table.name in names:
        version_layout = {version_table.name: LAYOUTS[SCHEMA_VERSION][version_table.name]}
        check_columns(inspector, version_layout, where)
        version = read_version(conn, version_table.name, where, SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"storage: {where} has schema version {version}, newer than this bayesopt's "
                f"{SCHEMA_VERSION}; upgrade bayesopt to open it (nothing was written)."
            )
        if version < FIRST_PREFIXED_VERSION:
            raise SchemaError(
                f"storage: {where}: {version_table.name} says version {version}, but prefixed "
                f"tables start at version {FIRST_PREFIXED_VERSION}; this bayesopt "
                f"knows versions 1 to {SCHEMA_VERSION} (nothing was written)."
            )
    layout = LAYOUTS[version]
    check_columns(inspector, {n: cols for n, cols in layout.items() if n in names}, where)
    if version_table.name not in names:
        found = ", ".join(sorted(names & _OURS))
        raise SchemaError(
            f"storage: {where} has bayesopt's tables ({found}) but no {version_table.name} "
            "table: it cannot be told which schema version they are; refusing to open it "
            "(nothing was written)."
        )
    missing = sorted(set(layout) - names)
    if missing:
        raise SchemaError(
            f"storage: {where} has schema version {version} but lacks the table(s) "
            f"{', '.join(missing)}; refusing to open it (nothing was written)."
        )
    return version
