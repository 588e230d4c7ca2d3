"""Who may write a storage: read-only detection and missing SQLite files.

A SQLite file this process cannot write (the file, or its directory where
SQLite keeps its journal) is opened read-only instead of failing on the first
pragma; every write then raises ``ReadOnlyStorageError``, saying why and that
reading still works.
"""

from __future__ import annotations

import os

from bayesopt.storage import engine as _engine
from bayesopt.storage.errors import ReadOnlyStorageError

__all__ = ["read_only_error", "read_only_reason"]

_READS_STILL_WORK = "Reading still works: trials, predict, recommend and reports."


def read_only_error(where: str, what: str, reason: str | None) -> ReadOnlyStorageError:
    """The error of a refused write.

    Args:
        where: The database (password masked).
        what: The refused operation ("finish trial 3").
        reason: Why the storage is read-only.
    """
    return ReadOnlyStorageError(
        f"storage: {where} is read-only ({reason}): cannot {what}. {_READS_STILL_WORK}"
    )


def read_only_reason(
    url: str | None, path: str | None, read_only: bool | None, create: bool
) -> str | None:
    """Why the storage is read-only (None: writable); refuses a missing SQLite file.

    Raises:
        FileNotFoundError: the file (``create=False`` or read-only) or its directory is missing.
        ValueError: ``read_only=True`` for the in-memory database.
    """
    shown = _engine.mask_url(url)
    if read_only and _engine.is_memory(url):
        raise ValueError("read_only: an in-memory database cannot be opened read-only.")
    if path is None:
        return "opened with read_only=True" if read_only else None
    if not os.path.exists(path):
        directory = os.path.dirname(path)
        if not create or read_only:
            raise FileNotFoundError(
                f"storage: no SQLite database at {path} ({shown}); check the path "
                "(nothing was created)."
            )
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"storage: the directory {directory} of the SQLite database {shown} does not "
                "exist; create it first or check the path."
            )
    if read_only:
        return "opened with read_only=True"
    if read_only is None:
        return _engine.sqlite_read_only_reason(path)
    return None
