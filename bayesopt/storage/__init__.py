"""Durable studies: SQLite in memory or on disk, PostgreSQL across machines."""

from bayesopt.storage.errors import ReadOnlyStorageError, SchemaError, StaleSnapshotError
from bayesopt.storage.records import QueuedPoint, Snapshot, StudyRecord, validate_study_name
from bayesopt.storage.schema import SCHEMA_VERSION
from bayesopt.storage.sql import SQLStorage

__all__ = [
    "SCHEMA_VERSION",
    "QueuedPoint",
    "ReadOnlyStorageError",
    "SQLStorage",
    "SchemaError",
    "Snapshot",
    "StaleSnapshotError",
    "StudyRecord",
    "validate_study_name",
]
