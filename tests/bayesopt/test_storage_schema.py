"""Schema version 2: prefixed tables, study keys, migration from version 1, refused databases.

``tests/data/study_v1.db`` was written by bayesopt's version-1 code (see
``tests/data/make_study_v1.py``); ``V1`` below is a frozen copy of that code's
table definitions, used to build version-1 databases on PostgreSQL and to replay
how version-1 code opens a database.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from bayesopt import Float, Optimizer, TrialState
from bayesopt.storage import SCHEMA_VERSION, SchemaError, SQLStorage
from bayesopt.storage.schema import LAYOUTS, meta

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "study_v1.db"
PREFIXED = {"bo_schema_version", "bo_studies", "bo_trials", "bo_queue"}

# --- version 1's tables, frozen (bayesopt/storage/sql.py at commit 2f3afb1) ---------------------
V1 = sa.MetaData()
V1_VERSION = sa.Table("schema_version", V1, sa.Column("version", sa.Integer, nullable=False))
V1_STUDIES = sa.Table(
    "studies",
    V1,
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
V1_TRIALS = sa.Table(
    "trials",
    V1,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), primary_key=True),
    sa.Column("trial_id", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.Column("heartbeat", sa.Double, nullable=True),
)
V1_QUEUE = sa.Table(
    "queue",
    V1,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
)


def _open_like_version_1(url):
    """What version-1 code does on opening: create its tables, then check the version row.

    Its SQLite engine, like today's, leaves transactions to SQLAlchemy (so the
    CREATE TABLEs are part of the transaction that the refusal rolls back).
    """
    engine = sa.create_engine(url)
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.begin() as conn:
            V1.create_all(conn)
            version = conn.execute(sa.select(V1_VERSION.c.version)).scalar_one_or_none()
            if version is not None and version > 1:
                raise RuntimeError(f"schema version {version}, newer than this bayesopt's 1")
    finally:
        engine.dispose()


def _fixture_rows():
    """The version-1 fixture's rows, read without touching the file (``immutable``)."""
    con = sqlite3.connect(f"file:{FIXTURE}?immutable=1", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return {
            name: [dict(r) for r in con.execute(f"SELECT * FROM {name}")]
            for name in ("schema_version", "studies", "trials", "queue")
        }
    finally:
        con.close()


def _copy_fixture(tmp_path):
    path = tmp_path / "v1.db"
    shutil.copyfile(FIXTURE, path)
    return path, f"sqlite:///{path}"


def _tables(path):
    with sqlite3.connect(path) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


def _check_fixture_data(storage, rows):
    """Every study, trial and queued point of the version-1 fixture, as stored."""
    assert storage.study_names() == [s["name"] for s in rows["studies"]] == ["v1", "other"]
    records = {s["name"]: storage.load_study(s["name"]) for s in rows["studies"]}
    for s in rows["studies"]:
        r = records[s["name"]]
        assert (r.id, r.direction, r.seed, r.n_initial) == (
            s["id"],
            s["direction"],
            s["seed"],
            s["n_initial"],
        )
        assert r.space == json.loads(s["space"]) and r.attrs == json.loads(s["attrs"])
        assert uuid.UUID(r.uid).version == 4
        snap = storage.snapshot(r.id)
        assert snap.next_trial_id == s["next_trial_id"]
        expected = []
        for t in rows["trials"]:
            if t["study_id"] == s["id"]:
                attrs = json.loads(t["attrs"])
                if t["heartbeat"] is not None:
                    attrs["heartbeat"] = t["heartbeat"]
                expected.append(
                    (t["trial_id"], t["state"], t["value"], json.loads(t["params"]), attrs)
                )
        got = [(t.id, t.state.value, t.value, t.params, t.attrs) for t in snap.trials]
        assert got == expected
        assert {(t.study, t.study_key) for t in snap.trials} == {(r.name, r.uid)}
        queued = [
            (q["id"], json.loads(q["params"])) for q in rows["queue"] if q["study_id"] == s["id"]
        ]
        assert [(p.id, p.params, p.problem) for p in snap.queue] == [
            (qid, params, None) for qid, params in queued
        ]
    assert records["v1"].uid != records["other"].uid
    return records


# --- version 2 -----------------------------------------------------------------------------------


def test_the_layout_of_the_current_version_is_frozen_in_layouts():
    # a later version must add LAYOUTS[3] and keep LAYOUTS[2]: opening a version-2 database
    # checks its tables against the columns version 2 had
    assert {t.name: {c.name for c in t.columns} for t in meta.sorted_tables} == {
        name: set(cols) for name, cols in LAYOUTS[SCHEMA_VERSION].items()
    }
    assert SCHEMA_VERSION == 2


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_every_trial_the_storage_returns_carries_its_study(where, sqlite_url):
    storage = SQLStorage(None if where == "memory" else sqlite_url)
    try:
        a, _ = storage.get_or_create_study(
            "a", direction="minimize", space={}, seed=0, n_initial=1
        )
        b, _ = storage.get_or_create_study(
            "b", direction="minimize", space={}, seed=0, n_initial=1
        )
        assert uuid.UUID(a.uid).version == 4 and uuid.UUID(b.uid).version == 4
        assert a.uid != b.uid
        # reopening gives the same key: it is stored, not made per process
        assert storage.load_study("a").uid == a.uid
        running = TrialState.RUNNING
        made = storage.create_trials(
            a.id, [({"x": 1}, running, None, {}), ({"x": 2}, running, None, {})]
        )
        other = storage.create_trials(b.id, [({"x": 1}, running, None, {})])
        done = storage.finish_trial(a.id, 0, TrialState.COMPLETE, 0.5, {}, lambda t: None)
        failed = storage.finish_trial(a.id, 1, TrialState.FAILED, None, {}, lambda t: None)
        claimed = storage.claim_trial(a.id, 1, {"attempts": 2}, lambda t: None)
        returned = [*made, done, failed, claimed, storage.get_trial(a.id, 0)]
        returned += storage.trials(a.id) + storage.snapshot(a.id).trials
        assert {(t.study, t.study_key) for t in returned} == {("a", a.uid)}
        assert {(t.study, t.study_key) for t in other} == {("b", b.uid)}
        # same id, other study: the key tells them apart
        assert made[0].id == other[0].id and made[0].study_key != other[0].study_key
        assert done.value == 0.5 and claimed.state is running and claimed.attrs["attempts"] == 2
        assert "study_key" not in repr(done)  # hidden from printed trials
    finally:
        storage.dispose()


def test_a_new_database_gets_only_prefixed_tables(sqlite_url, tmp_path):
    SQLStorage(sqlite_url).dispose()
    assert _tables(tmp_path / "study.db") == PREFIXED


# --- migration from version 1 ------------------------------------------------------------------


def test_a_version_1_sqlite_database_is_migrated_and_the_study_resumes(tmp_path):
    rows = _fixture_rows()
    assert [r["version"] for r in rows["schema_version"]] == [1]
    assert [t["state"] for t in rows["trials"] if t["study_id"] == 1] == [
        "COMPLETE", "COMPLETE", "FAILED", "FAILED", "COMPLETE", "COMPLETE", "RUNNING", "COMPLETE"
    ]  # fmt: skip
    path, url = _copy_fixture(tmp_path)

    storage = SQLStorage(url)
    try:
        records = _check_fixture_data(storage, rows)
    finally:
        storage.dispose()
    assert _tables(path) == PREFIXED | {"schema_version"}
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT version FROM bo_schema_version").fetchall() == [(2,)]
        # the legacy row says 2: version-1 code refuses the database instead of starting afresh
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
        fks = {
            r[2]
            for t in ("bo_trials", "bo_queue")
            for r in con.execute(f"PRAGMA foreign_key_list({t})")
        }
        assert fks == {"bo_studies"}
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    # a second open does not migrate again: same keys, same data
    again = SQLStorage(url)
    try:
        assert again.load_study("v1").uid == records["v1"].uid
        _check_fixture_data(again, rows)
    finally:
        again.dispose()

    opt = Optimizer.load(url, "v1", heartbeat_interval=None, grace_period=None)
    try:
        assert opt.best_trial.id == 4 and opt.best_trial.value == -0.5
        queued = opt.ask()  # the queued point comes first
        assert (queued.id, queued.attrs["source"]) == (8, "enqueued")
        assert queued.params == {"x": 0.5, "lr": 0.05, "n": 2, "act": "tanh"}
        assert queued.study_key == records["v1"].uid
        opt.tell(queued, -1.0)
        sobol = opt.ask()
        assert (sobol.id, sobol.attrs["source"]) == (9, "sobol")
        opt.tell(sobol, 5.0)
        trials = opt.trials
        assert [t.id for t in trials] == list(range(10))
        assert trials[6].state is TrialState.RUNNING  # the interrupted trial is still there
        assert opt.best_trial.id == 8
    finally:
        opt.close()
    other = Optimizer.load(url, "other", heartbeat_interval=None, grace_period=None)
    try:
        assert other.direction == "maximize" and [t.value for t in other.trials] == [0.75]
    finally:
        other.close()


def test_version_1_code_refuses_the_migrated_database(tmp_path):
    path, url = _copy_fixture(tmp_path)
    SQLStorage(url).dispose()
    with pytest.raises(RuntimeError, match="schema version 2, newer than this bayesopt's 1"):
        _open_like_version_1(url)
    assert _tables(path) == PREFIXED | {"schema_version"}  # its create_all was rolled back


def test_a_failed_migration_leaves_the_version_1_database_as_it_was(tmp_path, monkeypatch):
    path, url = _copy_fixture(tmp_path)

    def broken():
        raise OSError("no entropy")

    monkeypatch.setattr(uuid, "uuid4", broken)
    with pytest.raises(OSError, match="no entropy"):
        SQLStorage(url)
    assert _tables(path) == {"schema_version", "studies", "trials", "queue"}
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        assert "uid" not in {r[1] for r in con.execute("PRAGMA table_info(studies)")}
    monkeypatch.undo()
    storage = SQLStorage(url)  # and the next open migrates it
    try:
        _check_fixture_data(storage, _fixture_rows())
    finally:
        storage.dispose()


def test_a_version_1_postgresql_database_is_migrated_and_the_study_resumes(postgres_url):
    rows = _fixture_rows()
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            V1.create_all(conn)
            conn.execute(V1_VERSION.insert(), rows["schema_version"])
            conn.execute(V1_STUDIES.insert(), rows["studies"])
            conn.execute(V1_TRIALS.insert(), rows["trials"])
            conn.execute(V1_QUEUE.insert(), rows["queue"])
            for table in ("studies", "queue"):  # as if the rows had been inserted one by one
                conn.execute(
                    sa.text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )

        storage = SQLStorage(postgres_url)
        try:
            records = _check_fixture_data(storage, rows)
            # the renamed sequences go on: no id is reused
            new, created = storage.get_or_create_study(
                "new", direction="minimize", space={}, seed=0, n_initial=1
            )
            assert created and new.id == 3
            storage.enqueue(records["v1"].id, {"x": 1.0, "lr": 0.01, "n": 1, "act": "relu"})
            assert [q.id for q in storage.snapshot(records["v1"].id).queue] == [1, 2]
        finally:
            storage.dispose()

        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
            constraints = (
                conn.execute(
                    sa.text(
                        "SELECT conname FROM pg_constraint c JOIN pg_class t "
                        "ON c.conrelid = t.oid WHERE t.relname LIKE 'bo\\_%'"
                    )
                )
                .scalars()
                .all()
            )
            sequences = (
                conn.execute(sa.text("SELECT relname FROM pg_class WHERE relkind = 'S'"))
                .scalars()
                .all()
            )
        assert tables == PREFIXED | {"schema_version"}
        assert versions == [2]
        assert constraints and all(c.startswith("bo_") for c in constraints)
        assert "bo_studies_uid_key" in constraints
        assert sorted(sequences) == ["bo_queue_id_seq", "bo_studies_id_seq"]
    finally:
        engine.dispose()

    with pytest.raises(RuntimeError, match="schema version 2, newer than this bayesopt's 1"):
        _open_like_version_1(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    opt = Optimizer.load(postgres_url, "v1", heartbeat_interval=None, grace_period=None)
    try:
        t = opt.ask()
        assert (t.id, t.params["act"], t.attrs["source"]) == (8, "tanh", "enqueued")
        opt.tell(t, -2.0)
        assert opt.best_trial.id == 8 and len(opt.trials) == 9
    finally:
        opt.close()


# --- refused versions ----------------------------------------------------------------------------

BROKEN_VERSIONS = {
    "newer": (
        "UPDATE bo_schema_version SET version = 3",
        r"schema version 3, newer than this bayesopt's 2",
    ),
    "zero": (
        "UPDATE bo_schema_version SET version = 0",
        r"schema version 0, which no bayesopt wrote",
    ),
    "text": ("UPDATE bo_schema_version SET version = 'two'", r"'two', which no bayesopt wrote"),
    "no row": (
        "DELETE FROM bo_schema_version",
        r"should hold one schema version, it holds no row",
    ),
    "two rows": ("INSERT INTO bo_schema_version VALUES (2)", r"it holds 2 rows \(2, 2\)"),
    "no table": ("DROP TABLE bo_schema_version", r"no bo_schema_version table"),
    "one": ("UPDATE bo_schema_version SET version = 1", r"prefixed tables start at version 2"),
    "no queue": ("DROP TABLE bo_queue", r"lacks the table\(s\) bo_queue"),
}


@pytest.mark.parametrize("case", list(BROKEN_VERSIONS))
def test_an_unknown_or_ambiguous_version_is_refused_and_nothing_is_written(
    case, sqlite_url, tmp_path
):
    path = tmp_path / "study.db"
    storage = SQLStorage(sqlite_url)
    storage.get_or_create_study("s", direction="minimize", space={}, seed=0, n_initial=1)
    storage.dispose()
    sql, message = BROKEN_VERSIONS[case]
    with sqlite3.connect(path) as con:
        con.execute(sql)
    con.close()
    before, tables = _digest(path), _tables(path)
    with pytest.raises(SchemaError, match=message) as info:
        SQLStorage(sqlite_url)
    assert "nothing was written" in str(info.value)
    assert _digest(path) == before and _tables(path) == tables


BROKEN_LEGACY = {
    "row 0": (
        "UPDATE schema_version SET version = 0",
        r"schema version 0, which no bayesopt wrote",
    ),
    "row 2": ("UPDATE schema_version SET version = 2", r"row says 2, and it has no bo_ tables"),
    "row 3": ("UPDATE schema_version SET version = 3", r"row says 3"),
    "two rows": ("INSERT INTO schema_version VALUES (1)", r"it holds 2 rows"),
    "no row": ("DELETE FROM schema_version", r"it holds no row"),
    "no column": (
        "ALTER TABLE trials DROP COLUMN heartbeat",
        r"'trials' lacks column\(s\) 'heartbeat'",
    ),
    "no queue": ("DROP TABLE queue", r"but not queue"),
}


@pytest.mark.parametrize("case", list(BROKEN_LEGACY))
def test_a_version_1_set_that_is_not_exactly_version_1_is_refused(case, tmp_path):
    path, url = _copy_fixture(tmp_path)
    sql, message = BROKEN_LEGACY[case]
    with sqlite3.connect(path) as con:
        con.execute(sql)
    con.close()
    before, tables = _digest(path), _tables(path)
    with pytest.raises(SchemaError, match=message):
        SQLStorage(url)
    assert _digest(path) == before and _tables(path) == tables


# --- foreign tables ------------------------------------------------------------------------------


def test_a_table_with_our_name_and_another_layout_is_refused_without_writing(tmp_path):
    path = tmp_path / "shared.db"
    with sqlite3.connect(path) as con:  # another application's table, journal mode "delete"
        con.execute("CREATE TABLE bo_trials (id INTEGER PRIMARY KEY, payload TEXT)")
        con.execute("INSERT INTO bo_trials (payload) VALUES ('theirs')")
    con.close()
    before = _digest(path)
    with pytest.raises(SchemaError) as info:
        SQLStorage(f"sqlite:///{path}")
    message = str(info.value)
    missing = "'attrs', 'heartbeat', 'params', 'state', 'study_id', 'trial_id', 'value'"
    assert f"'bo_trials' lacks column(s) {missing}" in message
    assert "Nothing was written" in message
    assert _digest(path) == before  # not even the journal mode changed
    assert _tables(path) == {"bo_trials"}
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert con.execute("SELECT payload FROM bo_trials").fetchall() == [("theirs",)]
    con.close()


def test_a_foreign_table_with_our_name_on_postgresql_is_refused_without_writing(postgres_url):
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE bo_studies (id SERIAL PRIMARY KEY, title TEXT)"))
        with pytest.raises(
            SchemaError, match=r"'bo_studies' lacks column\(s\) 'attrs', 'created_at'"
        ):
            SQLStorage(postgres_url)
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == ["bo_studies"]
    finally:
        engine.dispose()


def test_an_optuna_database_gets_our_tables_beside_its_own_and_both_keep_working(tmp_path):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = tmp_path / "optuna.db"
    url = f"sqlite:///{path}"
    study = optuna.create_study(
        storage=url, study_name="o", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=4)
    theirs = [(t.number, t.value, t.params) for t in study.trials]
    optuna_tables = _tables(path)
    assert {"studies", "trials"} <= optuna_tables and not optuna_tables & PREFIXED
    del study

    opt = Optimizer(
        {"x": Float(0.0, 1.0)},
        storage=url,
        study="b",
        seed=0,
        n_initial=10,
        heartbeat_interval=None,
    )
    try:
        for _ in range(3):
            t = opt.ask()
            opt.tell(t, t.params["x"] ** 2)
    finally:
        opt.close()
    assert _tables(path) == optuna_tables | PREFIXED

    again = optuna.load_study(study_name="o", storage=url)
    assert [(t.number, t.value, t.params) for t in again.trials] == theirs
    again.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=1)
    assert len(optuna.load_study(study_name="o", storage=url).trials) == 5
    reopened = Optimizer.load(url, "b", heartbeat_interval=None)
    try:
        assert [t.state for t in reopened.trials] == [TrialState.COMPLETE] * 3
        assert reopened.storage.study_names() == ["b"]
    finally:
        reopened.close()
