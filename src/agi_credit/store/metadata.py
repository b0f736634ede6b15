"""The metadata.json contract (docs/architecture.md): a superset of the origin's format.

The origin wrote `{"current_version", "models": [{"version", "created_at", "features"}]}`;
every field added here is optional when reading, so that file is read unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agi_credit.store.versions import version_number

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_DECISION_THRESHOLD = 0.5
"""The threshold of a version that records none (the origin's entries)."""


def utc_now() -> str:
    """Timestamps as the origin wrote them (`YYYY-MM-DD HH:MM:SS`), in UTC."""
    return datetime.now(UTC).strftime(TIME_FORMAT)


class Status(StrEnum):
    ACTIVE = "active"
    """The version `current_version` names: the one served by default."""
    CANDIDATE = "candidate"
    """Registered, not promoted (the gate said no, or nobody promoted it yet)."""
    REJECTED = "rejected"
    """Marked unfit by a person (`agi-credit reject`); never promoted."""
    ARCHIVED = "archived"
    """Was active once, replaced by a promotion or a rollback."""


class Artifact(BaseModel):
    path: str
    """Relative to the store root: `models/model_vN.rds`."""
    sha256: str
    size_bytes: int


Action = Literal["register", "promote", "rollback", "reject", "discard"]


class HistoryEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    at: str = Field(default_factory=utc_now)
    action: Action
    version: str
    actor: str
    previous_version: str | None = None
    """The current version before this event (promote and rollback)."""
    reason: str | None = None


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str
    created_at: str
    features: list[str]
    status: Status | None = None
    artifact: Artifact | None = None
    metrics: dict[str, float] | None = None
    decision_threshold: float | None = None
    training_data: dict[str, Any] | None = None
    runtime: dict[str, Any] | None = None
    """R version, package versions, train script digest: what reproduces the fit."""
    model_metadata: dict[str, Any] | None = None
    """What train.R wrote in model_metadata.json (features, and whatever else it adds)."""
    gate: dict[str, Any] | None = None
    """The promotion gate's decision at registration: passed, reason, thresholds."""
    status_reason: str | None = None

    @property
    def number(self) -> int:
        return version_number(self.version)

    @property
    def threshold(self) -> float:
        """The decision threshold this version is served with."""
        if self.decision_threshold is None:
            return DEFAULT_DECISION_THRESHOLD
        return self.decision_threshold


class StoreMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    current_version: str | None = None
    models: list[ModelEntry] = Field(default_factory=list)
    history: list[HistoryEvent] = Field(default_factory=list)

    def find(self, version: str) -> ModelEntry | None:
        return next((m for m in self.models if m.version == version), None)

    def versions(self) -> list[str]:
        return [m.version for m in sorted(self.models, key=lambda m: m.number)]

    def status_of(self, entry: ModelEntry) -> Status:
        """The recorded status, derived from `current_version` where it must be: the
        origin's entries have none (each was served once, so they count as archived)."""
        if entry.version == self.current_version:
            return Status.ACTIVE
        if entry.status in (None, Status.ACTIVE):
            return Status.ARCHIVED
        return entry.status

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True) + "\n"
