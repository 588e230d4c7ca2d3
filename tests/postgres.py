"""A real PostgreSQL server for the tests, from Debian's packages, on loopback.

``PostgresServer.start()`` finds PostgreSQL's binaries (``initdb``, ``pg_ctl``);
when they are missing it installs Debian's ``postgresql`` package with
``scripts/postgres.sh install`` (``apt-get``, as root or through ``sudo -n``; a
file lock keeps parallel test processes from running apt at once). It then
initialises a cluster in a fresh temporary directory and starts it on a free
port of 127.0.0.1 with ``scripts/postgres.sh start``, which runs the server as
the ``postgres`` user when the tests run as root. Each test gets its own
database (``create_database``).

Every role logs in without a password (trust on loopback), except
``PASSWORD_ROLE``: it has the password ``PASSWORD`` and must give it
(``scram-sha-256``), so that the tests can check credentials given in the URL,
in ``PGPASSWORD`` and in a ``.pgpass`` file (``PGPASSFILE``).

The tests that need it are skipped only when the binaries are missing and
cannot be installed (no ``apt-get``, or neither root nor passwordless sudo);
the skip reason says so. A failing ``apt-get`` is an error, not a skip, so CI
(root, apt reachable) always runs them.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"
INSTALL_LOCK = Path(tempfile.gettempdir()) / "bayesopt-postgres-install.lock"
#: The one role that must authenticate with a password (scram-sha-256 on loopback).
PASSWORD_ROLE = "bayesopt_pw"
#: Its password (a throw-away server on loopback: not a secret).
PASSWORD = "pw-Secret-7f3a"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed and cannot be installed here (the reason is the message)."""


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )


def _have_binaries() -> bool:
    return _script("bindir", timeout=30).returncode == 0


def ensure_installed() -> None:
    """Install Debian's ``postgresql`` package if its binaries are missing.

    Raises:
        PostgresUnavailable: no binaries, and no way to install them.
        RuntimeError: the installation was attempted and failed.
    """
    if _have_binaries():
        return
    if shutil.which("apt-get") is None:
        raise PostgresUnavailable(
            "PostgreSQL's initdb/pg_ctl are not installed and apt-get is not available; "
            "install PostgreSQL to run the PostgreSQL tests."
        )
    root = os.geteuid() == 0
    if not root and (
        shutil.which("sudo") is None
        or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0
    ):
        raise PostgresUnavailable(
            "PostgreSQL's initdb/pg_ctl are not installed and installing them needs root: "
            "run `sudo bash scripts/postgres.sh install`."
        )
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one apt-get at a time across test processes
        if _have_binaries():
            return
        done = _script("install", timeout=900)
    if done.returncode != 0:
        raise RuntimeError(
            f"`bash scripts/postgres.sh install` failed ({done.returncode}):\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throw-away PostgreSQL cluster in a temporary directory.

    Attributes:
        url: ``postgresql://postgres@127.0.0.1:<port>/postgres`` (the maintenance database).
        port: The TCP port on 127.0.0.1.
    """

    def __init__(self, directory: Path, port: int, url: str) -> None:
        self.directory = directory
        self.port = port
        self.url = url
        self._n = 0

    @classmethod
    def start(cls, attempts: int = 3) -> PostgresServer:
        """Install if needed, then initialise and start a cluster on a free loopback port."""
        ensure_installed()
        directory = Path(tempfile.mkdtemp(prefix="bayesopt-pg-"))
        error = ""
        for _ in range(attempts):
            port = _free_port()
            done = _script("start", str(directory), str(port), timeout=300)
            if done.returncode == 0:
                url = done.stdout.strip().splitlines()[-1]
                server = cls(directory, port, url)
                server._add_password_role()
                return server
            log = directory / "server.log"
            error = done.stderr + (log.read_text()[-2000:] if log.exists() else "")
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start:\n{error}")

    def _admin(self) -> Any:
        """An autocommit connection as ``postgres`` to the maintenance database."""
        import psycopg

        return psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        )

    def _add_password_role(self) -> None:
        """Create ``PASSWORD_ROLE`` and require its password (scram-sha-256) on loopback."""
        with self._admin() as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'")
        hba = self.directory / "data" / "pg_hba.conf"
        rules = hba.read_text()
        line = f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
        with open(hba, "w") as fh:  # rewritten in place: the file keeps its owner
            fh.write(line + rules)  # the first matching line wins: before the trust lines
        with self._admin() as conn:
            conn.execute("SELECT pg_reload_conf()")
        self._wait_for_password_rule()

    def _wait_for_password_rule(self, timeout: float = 30.0) -> None:
        """Wait until the server applies the reloaded rule (a wrong password is refused)."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(
                    f"host=127.0.0.1 port={self.port} user={PASSWORD_ROLE} dbname=postgres "
                    "password=wrong"
                ).close()
            except psycopg.OperationalError:
                return  # refused: the rule is in force
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not apply the {PASSWORD_ROLE} rule")
            time.sleep(0.05)

    def create_database(self, hint: str = "test", owner: str | None = None) -> str:
        """A new, empty database; returns its URL (user ``owner``, default ``postgres``).

        Args:
            hint: The start of the database name.
            owner: The owning role (e.g. ``PASSWORD_ROLE``); the URL has no password.
        """
        self._n += 1
        name = re.sub(r"[^a-z0-9_]", "_", hint.lower())[:40] + f"_{self._n}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f" OWNER {owner}" if owner else ""))
        return f"postgresql://{owner or 'postgres'}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        try:
            _script("stop", str(self.directory), timeout=120)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
