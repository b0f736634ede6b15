"""The serving state: which versions are served, immutable.

A request reads `VersionRegistry.state` once and finishes on the versions it saw; a reload
builds the next state beside it and publishes it with one reference assignment, so readers
take no lock and never see a half-built state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from agi_credit.model_metadata import Engine
from agi_credit.predictor.errors import VersionUnavailable, check_version_name
from agi_credit.predictor.schema import FeatureSchema
from agi_credit.predictor.scorers import Scorer

__all__ = ["ServedVersion", "ServingState", "VersionKey"]


class VersionKey(NamedTuple):
    """One version's artifact: a version whose file changes is loaded again."""

    version: str
    sha256: str


@dataclass(frozen=True, slots=True)
class ServedVersion:
    version: str
    schema: FeatureSchema
    scorer: Scorer
    threshold: float
    sha256: str
    created_at: str | None = None
    parity_gap: float | None = None
    """Largest |compiled - R| on the parity sample, for compiled scorers."""
    note: str | None = None
    """Why a recipe + glm model runs in R rather than compiled."""

    @property
    def engine(self) -> Engine:
        return self.scorer.engine


@dataclass(frozen=True, slots=True)
class ServingState:
    """One consistent view: the versions served and the default one."""

    current: str | None = None
    """The version served when none is asked for."""
    store_current: str | None = None
    """What metadata.json names; differs from `current` while that version cannot load."""
    served: dict[str, ServedVersion] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    """Version → why it is not served (failed to load, rejected)."""
    damaged: dict[str, str] = field(default_factory=dict)
    """Served version → what is wrong with its file in the store (missing, changed): it is
    served from the copy loaded in memory until the store is mended."""

    @property
    def can_score(self) -> bool:
        """Whether any request can be answered: some version is served."""
        return bool(self.served)

    def why_not_ready(self) -> str:
        return "no version can be served: " + _reasons(self.unavailable)

    def resolve(self, version: str | None) -> ServedVersion:
        """The version to score with: `version`, or the current one when None."""
        if version is None:
            if self.current is not None:
                return self.served[self.current]
            if self.store_current in self.unavailable:
                raise VersionUnavailable(
                    f"the current version {self.store_current} is not served: "
                    f"{self.unavailable[self.store_current]}"
                )
            raise VersionUnavailable(self.why_not_ready())
        check_version_name(version)  # a 400 before anything else
        if version in self.served:
            return self.served[version]
        if version in self.unavailable:
            raise VersionUnavailable(
                f"version {version} is not served: {self.unavailable[version]}"
            )
        raise VersionUnavailable(
            f"unknown version {version}; served: {', '.join(self.served) or 'none'}"
        )


def _reasons(unavailable: dict[str, str]) -> str:
    return (
        "; ".join(f"{v}: {why}" for v, why in unavailable.items())
        or "the store has no model versions yet"
    )
