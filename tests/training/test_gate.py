"""The promotion gate decides from the holdout AUC and the current version's AUC."""

from __future__ import annotations

import pytest

from agi_credit.training import decide


@pytest.mark.parametrize(
    ("auc", "current_auc", "promote", "reason"),
    [
        (0.60, None, True, "first version in the store"),
        (0.50, None, False, "below MIN_AUC 0.5500"),
        (0.60, 0.605, True, "within 0.0100 of v1's 0.6050"),
        (0.60, 0.62, False, "worse than v1's 0.6200 by more than AUC_TOLERANCE"),
        (0.70, 0.60, True, "within"),
    ],
)
def test_decisions(auc: float, current_auc: float | None, promote: bool, reason: str) -> None:
    decision = decide(
        auc=auc,
        min_auc=0.55,
        auc_tolerance=0.01,
        current_version="v1" if current_auc is not None else None,
        current_auc=current_auc,
    )
    assert decision.promote is promote
    assert reason in decision.reason


def test_a_current_version_without_metrics_does_not_block() -> None:
    decision = decide(
        auc=0.6, min_auc=0.55, auc_tolerance=0.01, current_version="v2", current_auc=None
    )
    assert decision.promote and "no recorded AUC" in decision.reason
    assert decision.as_dict()["passed"] is True
