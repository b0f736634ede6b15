"""The promotion gate: is a new version good enough to replace the current one?"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["GateDecision", "decide"]


@dataclass(frozen=True, slots=True)
class GateDecision:
    promote: bool
    reason: str
    min_auc: float
    auc_tolerance: float
    compared_with: str | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = data.pop("promote")
        return data


def decide(
    *,
    auc: float,
    min_auc: float,
    auc_tolerance: float,
    current_version: str | None,
    current_auc: float | None,
) -> GateDecision:
    """Promote when `auc ≥ min_auc` and `auc ≥ current_auc - auc_tolerance`."""

    def decision(promote: bool, reason: str) -> GateDecision:
        return GateDecision(
            promote=promote,
            reason=reason,
            min_auc=min_auc,
            auc_tolerance=auc_tolerance,
            compared_with=current_version,
        )

    if auc < min_auc:
        return decision(False, f"holdout AUC {auc:.4f} is below MIN_AUC {min_auc:.4f}")
    if current_version is None:
        return decision(
            True, f"holdout AUC {auc:.4f} ≥ MIN_AUC {min_auc:.4f}; first version in the store"
        )
    if current_auc is None:
        return decision(
            True,
            f"holdout AUC {auc:.4f} ≥ MIN_AUC {min_auc:.4f}; current "
            f"version {current_version} has no recorded AUC",
        )
    if auc < current_auc - auc_tolerance:
        return decision(
            False,
            f"holdout AUC {auc:.4f} is worse than {current_version}'s "
            f"{current_auc:.4f} by more than AUC_TOLERANCE "
            f"{auc_tolerance:.4f}",
        )
    return decision(
        True,
        f"holdout AUC {auc:.4f} ≥ MIN_AUC {min_auc:.4f} and within "
        f"{auc_tolerance:.4f} of {current_version}'s {current_auc:.4f}",
    )
