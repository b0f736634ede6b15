"""The predictor's model metadata (v2 `GET /v2/models/{name}`) with our `parameters`
extension: every version's status. The predictor writes it; the sidecar reads it for
`/model-info`. One model for both, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Engine", "ModelMetadata", "ModelParameters", "VersionInfo"]

Engine = Literal["compiled", "r"]
"""What scores a version: its compiled numpy form, or R itself."""


class VersionInfo(BaseModel):
    """One version as the predictor sees it."""

    status: Literal["serving", "unavailable"]
    created_at: str | None = None
    engine: Engine | None = None
    features: list[str] = Field(default_factory=list)
    decision_threshold: float | None = None
    sha256: str | None = None
    parity_gap: float | None = None
    """Largest |compiled - R| on the parity sample, for compiled versions."""
    note: str | None = None
    """Why a recipe + glm version runs in R rather than compiled."""
    error: str | None = None
    """Why an unavailable version is not served."""
    store_problem: str | None = None
    """What is wrong with a serving version's file in the store; it is served from memory."""


class ModelParameters(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    current_version: str | None = None
    """The version served when none is asked for."""
    store_current_version: str | None = None
    """What metadata.json names; differs from `current_version` while that one cannot load."""
    model_versions: dict[str, VersionInfo] = Field(default_factory=dict)
    reload_error: str | None = None
    """The last reload's unexpected failure, until a reload succeeds."""


class ModelMetadata(BaseModel):
    """v2 model metadata."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    parameters: ModelParameters
