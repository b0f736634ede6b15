"""Holdout metrics agree with their definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from agi_credit.training import evaluate
from agi_credit.training.metrics import calibration_bins


def brute_force_auc(y: np.ndarray, score: np.ndarray) -> float:
    pairs = [(a, b) for a, b in itertools.product(score[y == 1], score[y == 0])]
    return float(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs]))


def test_auc_equals_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    assert evaluate(y, score).auc == pytest.approx(brute_force_auc(y, score), abs=1e-12)


@pytest.mark.parametrize(
    ("score", "auc", "ks"),
    [
        ([0.1, 0.2, 0.8, 0.9], 1.0, 1.0),
        ([0.9, 0.8, 0.2, 0.1], 0.0, 0.0),
        ([0.5, 0.5, 0.5, 0.5], 0.5, 0.0),
    ],
)
def test_perfect_reversed_and_constant_scores(score: list[float], auc: float, ks: float) -> None:
    metrics = evaluate(np.array([0, 0, 1, 1]), np.array(score))
    assert metrics.auc == auc
    assert metrics.gini == 2 * auc - 1
    assert metrics.ks == ks


def test_brier_and_log_loss() -> None:
    y, p = np.array([0, 1]), np.array([0.2, 0.6])
    metrics = evaluate(y, p)
    assert metrics.brier == pytest.approx((0.04 + 0.16) / 2)
    assert metrics.log_loss == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    assert metrics.default_rate == 0.5 and metrics.rows == 2


def test_a_single_class_has_no_auc() -> None:
    with pytest.raises(ValueError, match="single class"):
        evaluate(np.array([0, 0]), np.array([0.1, 0.2]))


def test_calibration_bins_have_equal_counts() -> None:
    prob = np.linspace(0, 1, 100)
    predicted, observed, counts = calibration_bins((prob > 0.5).astype(int), prob)
    assert counts.tolist() == [10] * 10
    assert observed[0] == 0 and observed[-1] == 1
    assert np.all(np.diff(predicted) > 0)
