"""Durable studies: SQLite in memory or on disk, PostgreSQL across machines."""

from bayesopt.storage.sql import SQLStorage, StaleSnapshotError, StudyRecord

__all__ = ["SQLStorage", "StaleSnapshotError", "StudyRecord"]
