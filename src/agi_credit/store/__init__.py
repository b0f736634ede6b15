"""The model store room: metadata.json, versioned artifacts, governance history."""

from __future__ import annotations

from agi_credit.store.check import Orphan, StoreCheck, check_store
from agi_credit.store.errors import (
    EmptyStore,
    InvalidVersionName,
    StoreError,
    VersionNotFound,
    VersionRejected,
)
from agi_credit.store.metadata import (
    DEFAULT_DECISION_THRESHOLD,
    TIME_FORMAT,
    Artifact,
    HistoryEvent,
    ModelEntry,
    Status,
    StoreMetadata,
    utc_now,
)
from agi_credit.store.store import ModelStore, StoreTransaction, default_actor
from agi_credit.store.versions import VERSION_PATTERN, version_name, version_number

__all__ = [
    "DEFAULT_DECISION_THRESHOLD",
    "TIME_FORMAT",
    "VERSION_PATTERN",
    "Artifact",
    "EmptyStore",
    "HistoryEvent",
    "InvalidVersionName",
    "ModelEntry",
    "ModelStore",
    "Orphan",
    "Status",
    "StoreCheck",
    "StoreError",
    "StoreMetadata",
    "StoreTransaction",
    "VersionNotFound",
    "VersionRejected",
    "check_store",
    "default_actor",
    "utc_now",
    "version_name",
    "version_number",
]
