"""Who may open what: read-only databases, mistyped paths and names, credentials.

The tests run as root, and root may write any file whatever its mode: a file is
made read-only for real by running a reader as ``nobody`` (``setpriv``, skipped
where that is impossible), and in-process by telling ``SQLStorage`` that the
file is not writable (a mocked ``os.access``), which opens it with SQLite's
``mode=ro`` all the same.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bayesopt import Float, Optimizer, TrialState
from bayesopt.storage import ReadOnlyStorageError, SQLStorage, validate_study_name
from bayesopt.storage import engine as storage_engine

SPACE = {"x": Float(0.0, 1.0), "y": Float(-1.0, 1.0)}


def _make_study(url, n=4):
    """A study with ``n`` COMPLETE trials, one RUNNING trial and one queued point."""
    opt = Optimizer(SPACE, storage=url, study="s", seed=0, n_initial=10, heartbeat_interval=None)
    for _ in range(n):
        t = opt.ask()
        opt.tell(t, (t.params["x"] - 0.3) ** 2 + t.params["y"] ** 2)
    opt.ask()
    opt.enqueue({"x": 0.5, "y": 0.5})
    opt.close()


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


# --- read-only databases -------------------------------------------------------------------------


def test_an_explicitly_read_only_storage_reads_and_refuses_every_write(sqlite_url, tmp_path):
    _make_study(sqlite_url)
    path = tmp_path / "study.db"
    before = _digest(path)
    storage = SQLStorage(sqlite_url, read_only=True)
    try:
        assert storage.read_only and storage.read_only_reason == "opened with read_only=True"
        assert "read_only=True" in repr(storage)
        assert storage.study_names() == ["s"]
        study = storage.load_study("s")
        snap = storage.snapshot(study.id)
        assert [t.state for t in snap.trials] == [TrialState.COMPLETE] * 4 + [TrialState.RUNNING]
        assert len(snap.queue) == 1 and storage.get_trial(study.id, 0) == snap.trials[0]
        assert storage.trials(study.id) == snap.trials
        # an existing study is returned, a new one cannot be created
        assert storage.get_or_create_study(
            "s", direction="minimize", space={}, seed=0, n_initial=1
        ) == (study, False)
        accept = lambda t: None  # noqa: E731
        writes = {
            "create the study 'new'": lambda: storage.get_or_create_study(
                "new", direction="minimize", space={}, seed=0, n_initial=1
            ),
            "create trials": lambda: storage.create_trials(
                study.id, [({"x": 0.1, "y": 0.0}, TrialState.COMPLETE, 1.0, {})]
            ),
            "finish trial 4": lambda: storage.finish_trial(
                study.id, 4, TrialState.COMPLETE, 1.0, {}, accept
            ),
            "relaunch trial 4": lambda: storage.claim_trial(study.id, 4, {}, accept),
            "enqueue a point": lambda: storage.enqueue(study.id, {"x": 0.1, "y": 0.0}),
            "remove queued points": lambda: storage.drop_queued(study.id, [snap.queue[0].id]),
            "record a heartbeat": lambda: storage.heartbeat(study.id, [4]),
            "mark stale trials as FAILED": lambda: storage.fail_stale(study.id, 0.0),
        }
        for what, write in writes.items():
            with pytest.raises(ReadOnlyStorageError) as info:
                write()
            assert isinstance(info.value, PermissionError)
            message = str(info.value)
            assert f"is read-only (opened with read_only=True): cannot {what}." in message
            assert "Reading still works: trials, predict, recommend and reports." in message
        with pytest.raises(ReadOnlyStorageError, match="cannot ask for a new trial"):
            with storage.ask_lock(study.id):
                pass
        assert storage.snapshot(study.id) == snap
    finally:
        storage.dispose()
    assert _digest(path) == before


def test_a_read_only_file_is_detected_and_read_through_optimizer_load(
    sqlite_url, tmp_path, monkeypatch
):
    _make_study(sqlite_url)
    path = str(tmp_path / "study.db")
    real_access = os.access

    def access(p, mode, *args, **kwargs):  # what a user without write permission is told
        if os.fspath(p) == path and mode == os.W_OK:
            return False
        return real_access(p, mode, *args, **kwargs)

    monkeypatch.setattr(storage_engine.os, "access", access)
    opt = Optimizer.load(sqlite_url, "s")
    try:
        assert opt.storage.read_only
        assert opt.storage.read_only_reason == f"the file {path} is not writable by this user"
        assert len(opt.trials) == 5
        mean, std = opt.predict([{"x": 0.3, "y": 0.0}, {"x": 0.9, "y": 0.9}])
        assert mean.shape == (2,) and std.shape == (2,)
        assert mean[0] < mean[1]  # the model has read the four values
        with pytest.raises(ReadOnlyStorageError, match="not writable by this user.*cannot ask"):
            opt.ask()
        with pytest.raises(PermissionError, match="cannot finish trial 4"):
            opt.tell(4, 0.5)
    finally:
        opt.close()
    # SQLite itself was opened read-only (mode=ro): even a raw write is refused
    storage = SQLStorage(sqlite_url)
    try:
        with pytest.raises(Exception, match="readonly"):
            with storage.engine.connect() as conn:
                conn.exec_driver_sql("DELETE FROM bo_queue")
    finally:
        storage.dispose()


def test_a_read_only_directory_is_detected(sqlite_url, tmp_path, monkeypatch):
    _make_study(sqlite_url)
    directory = str(tmp_path)
    real_access = os.access
    monkeypatch.setattr(
        storage_engine.os,
        "access",
        lambda p, mode, *a, **k: os.fspath(p) != directory and real_access(p, mode, *a, **k),
    )
    storage = SQLStorage(sqlite_url)
    try:
        assert storage.read_only_reason.startswith(f"its directory {directory} is not writable")
        assert storage.study_names() == ["s"]
    finally:
        storage.dispose()
    assert not os.path.exists(tmp_path / "study.db-wal")  # opened immutable: nothing beside it


READER = """
import sys
from bayesopt import Optimizer
from bayesopt.storage import ReadOnlyStorageError

opt = Optimizer.load(sys.argv[1], "s")
print("reason:", opt.storage.read_only_reason)
print("trials:", len(opt.trials))
mean, std = opt.predict([{"x": 0.3, "y": 0.0}])
print("predict:", mean.shape, std.shape)
try:
    opt.tell(4, 0.5)
except ReadOnlyStorageError as exc:
    print("tell:", exc)
opt.close()
"""


def _as_nobody():
    """A command prefix running as ``nobody`` with this Python, or None when impossible."""
    if os.geteuid() != 0:
        return []  # not root: permissions apply to this user already
    for prefix in (
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
        ["runuser", "-u", "nobody", "--"],
    ):
        if shutil.which(prefix[0]) is None:
            continue
        probe = subprocess.run(
            [*prefix, sys.executable, "-c", "import os, bayesopt; print(os.geteuid())"],
            capture_output=True,
            text=True,
            cwd="/",
            env=_env(),
        )
        if probe.returncode == 0 and probe.stdout.strip() == "65534":
            return prefix
    return None


def _env():
    home = tempfile.gettempdir()
    return {
        **os.environ,
        "HOME": home,
        "PYTHONDONTWRITEBYTECODE": "1",
        "BAYESOPT_TORCH_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }


@pytest.mark.parametrize("locked", ["file", "directory"])
def test_another_user_reads_a_read_only_study_for_real(locked):
    prefix = _as_nobody()
    if prefix is None:
        pytest.skip("no way to run this Python as an unprivileged user (setpriv, runuser)")
    # pytest's tmp_path is private to root: a directory nobody can reach
    directory = Path(tempfile.mkdtemp(prefix="bayesopt-ro-"))
    try:
        directory.chmod(0o755)
        path = directory / "study.db"
        url = f"sqlite:///{path}"
        _make_study(url)
        (directory / "study.db.asklock").unlink(missing_ok=True)
        assert not (directory / "study.db-wal").exists()
        before = _digest(path)
        path.chmod(0o444)
        if locked == "directory":
            directory.chmod(0o555)
        else:
            directory.chmod(0o777)  # the reader may create SQLite's -shm beside the file
        done = subprocess.run(
            [*prefix, sys.executable, "-c", READER, url],
            capture_output=True,
            text=True,
            cwd="/",
            env=_env(),
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        out = done.stdout
        assert f"reason: the file {path} is not writable by this user" in out
        assert "trials: 5" in out and "predict: (1,) (1,)" in out
        assert f"tell: storage: {url} is read-only" in out and "cannot finish trial 4" in out
        assert "Reading still works" in out
        assert _digest(path) == before
    finally:
        directory.chmod(0o755)
        shutil.rmtree(directory, ignore_errors=True)


def test_a_read_only_version_1_database_is_refused_until_migrated(tmp_path):
    source = Path(__file__).resolve().parents[1] / "data" / "study_v1.db"
    path = tmp_path / "v1.db"
    shutil.copyfile(source, path)
    before = _digest(path)
    with pytest.raises(ReadOnlyStorageError, match=r"schema version 1; .* read-only"):
        SQLStorage(f"sqlite:///{path}", read_only=True)
    assert _digest(path) == before


def test_a_read_only_database_without_tables_holds_no_study(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    storage = SQLStorage(f"sqlite:///{path}", read_only=True)
    try:
        assert storage.study_names() == [] and storage.load_study("s") is None
        with pytest.raises(ReadOnlyStorageError, match="cannot create the study 's'"):
            storage.get_or_create_study("s", direction="minimize", space={}, seed=0, n_initial=1)
    finally:
        storage.dispose()
    assert path.stat().st_size == 0


# --- mistyped paths and names ------------------------------------------------------------------


def test_loading_a_mistyped_path_creates_nothing(tmp_path):
    missing_dir = tmp_path / "no" / "such.db"
    with pytest.raises(FileNotFoundError, match=f"no SQLite database at {missing_dir}"):
        Optimizer.load(f"sqlite:///{missing_dir}")
    missing = tmp_path / "typo.db"
    with pytest.raises(FileNotFoundError, match=f"no SQLite database at {missing}"):
        Optimizer.load(f"sqlite:///{missing}", "s")
    with pytest.raises(FileNotFoundError, match="nothing was created"):
        SQLStorage(f"sqlite:///{missing}", create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_is_named(tmp_path):
    url = f"sqlite:///{tmp_path / 'no' / 'study.db'}"
    with pytest.raises(FileNotFoundError, match=f"the directory {tmp_path / 'no'} of the SQLite"):
        SQLStorage(url)


BAD_NAMES = [
    ("", r"expected a non-empty name: ''"),
    ("x" * 600, r"at most 512 characters, got 600: 'x{76}\.\.\.\."),
    ("a\x00b", r"no NUL character, got one: 'a\\x00b'"),
    (3, r"expected a str, got int: 3"),
]


@pytest.mark.parametrize("name, message", BAD_NAMES)
def test_validate_study_name(name, message):
    with pytest.raises(ValueError, match=message):
        validate_study_name(name)


def test_the_longest_name_is_accepted():
    assert validate_study_name("é" * 512) == "é" * 512


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bad_study_names_are_refused_before_the_database_sees_them(backend, request):
    url = request.getfixturevalue("postgres_url" if backend == "postgresql" else "sqlite_url")
    storage = SQLStorage(url)
    try:
        for name, message in BAD_NAMES[:3]:
            with pytest.raises(ValueError, match=message):
                storage.get_or_create_study(
                    name, direction="minimize", space={}, seed=0, n_initial=1
                )
            with pytest.raises(ValueError, match=message):
                storage.load_study(name)
        assert storage.study_names() == []
        longest = "é" * 512  # 512 characters (1024 bytes) fit the column on every backend
        record, created = storage.get_or_create_study(
            longest, direction="minimize", space={}, seed=0, n_initial=1
        )
        assert created and storage.load_study(longest) == record
    finally:
        storage.dispose()


# --- credentials ---------------------------------------------------------------------------------


@pytest.fixture
def password_url(postgres_server):
    """A database owned by the role that must give a password; its URL has none."""
    from postgres import PASSWORD_ROLE

    return postgres_server.create_database("pw", owner=PASSWORD_ROLE)


def _no_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-such-pgpass"))


def test_a_url_without_password_fails_without_credentials(password_url, monkeypatch, tmp_path):
    _no_credentials(monkeypatch, tmp_path)
    with pytest.raises(Exception, match="no password supplied") as info:
        SQLStorage(password_url)
    assert "pw-Secret" not in str(info.value)


def _run_study(url):
    opt = Optimizer(SPACE, storage=url, study="pw", seed=0, n_initial=5, heartbeat_interval=None)
    try:
        t = opt.ask()
        opt.tell(t, 0.5)
        return [(x.id, x.value) for x in opt.trials]
    finally:
        opt.close()


def test_pgpassword_supplies_the_password(password_url, monkeypatch, tmp_path):
    from postgres import PASSWORD

    _no_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert _run_study(password_url) == [(0, 0.5)]


def test_a_pgpass_file_supplies_the_password(password_url, postgres_server, monkeypatch, tmp_path):
    from postgres import PASSWORD, PASSWORD_ROLE

    _no_credentials(monkeypatch, tmp_path)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{postgres_server.port}:*:{PASSWORD_ROLE}:{PASSWORD}\n")
    pgpass.chmod(stat.S_IRUSR | stat.S_IWUSR)  # libpq ignores a file others can read
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert _run_study(password_url) == [(0, 0.5)]


def test_a_password_in_the_url_never_appears_in_reprs_or_errors(
    password_url, postgres_server, monkeypatch, tmp_path
):
    from postgres import PASSWORD, PASSWORD_ROLE

    _no_credentials(monkeypatch, tmp_path)
    url = password_url.replace(f"{PASSWORD_ROLE}@", f"{PASSWORD_ROLE}:{PASSWORD}@")
    masked = password_url.replace(f"{PASSWORD_ROLE}@", f"{PASSWORD_ROLE}:***@")
    storage = SQLStorage(url)
    messages = {"repr": repr(storage), "display_url": storage.display_url}
    try:
        assert storage.display_url == masked
        with pytest.raises(ValueError) as info:
            storage.snapshot(99)
        messages["no study"] = str(info.value)
    finally:
        storage.dispose()
    with pytest.raises(ValueError) as info:
        Optimizer.load(url, "missing")
    messages["load"] = str(info.value)
    with pytest.raises(Exception, match="password authentication failed") as info:
        SQLStorage(url.replace(PASSWORD, "Wrong-Secret-1"))
    messages["wrong password"] = str(info.value)
    storage = SQLStorage(url)
    try:
        with storage.engine.begin() as conn:  # another application's bo_queue
            conn.exec_driver_sql("DROP TABLE bo_queue")
            conn.exec_driver_sql("CREATE TABLE bo_queue (id INTEGER)")
    finally:
        storage.dispose()
    with pytest.raises(RuntimeError, match=r"lacks column\(s\) 'params', 'study_id'") as info:
        SQLStorage(url)
    messages["schema"] = str(info.value)
    for what, message in messages.items():
        assert PASSWORD not in message and "Wrong-Secret" not in message, what
        if what != "wrong password":  # libpq's own message names no URL
            assert masked in message, what


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://u:secret@h:5/db", "postgresql://u:***@h:5/db"),
        ("postgresql://u@h/db?password=secret", "postgresql://u@h/db?password=***"),
        ("u:secret@host", "***@host"),
        ("weird://u:secret@h/db", "weird://u:***@h/db"),
        ("sqlite:///a.db", "sqlite:///a.db"),
        (None, "memory"),
    ],
)
def test_mask_url(url, shown):
    assert storage_engine.mask_url(url) == shown
    if url:
        with pytest.raises(ValueError) as info:  # not a database URL: the error masks it too
            storage_engine.make_engine(url.replace("://", "//"))
        assert "secret" not in str(info.value)
