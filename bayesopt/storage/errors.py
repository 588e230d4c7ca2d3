"""The storage's own exceptions."""

from __future__ import annotations

__all__ = ["ReadOnlyStorageError", "SchemaError", "StaleSnapshotError"]


class StaleSnapshotError(RuntimeError):
    """The study changed since the snapshot a proposal was computed from."""


class SchemaError(RuntimeError):
    """The database's tables are not (or no longer) bayesopt's: nothing was written.

    Raised for a schema version newer than this bayesopt's, an unknown or
    ambiguous version row, or a table with one of bayesopt's names whose
    layout is not bayesopt's.
    """


class ReadOnlyStorageError(PermissionError):
    """A write to a storage opened read-only (the message says why and what still works)."""
