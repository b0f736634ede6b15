"""Holdout metrics of a binary classifier: discrimination and calibration."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Metrics", "calibration_bins", "evaluate", "roc_curve"]

_EPS = 1e-15


@dataclass(frozen=True, slots=True)
class Metrics:
    auc: float
    gini: float
    ks: float
    brier: float
    log_loss: float
    default_rate: float
    mean_prob_default: float
    rows: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-score, kind="mergesort")
    y_sorted, s_sorted = y[order], score[order]
    distinct = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    tps = np.cumsum(y_sorted)[distinct]
    fps = (distinct + 1) - tps
    positives, negatives = max(tps[-1], 1), max(fps[-1], 1)
    return np.r_[0.0, fps / negatives], np.r_[0.0, tps / positives]


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half."""
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + ends + 1) / 2)[inverse]  # tied scores share their mean rank
    positives = int(y.sum())
    negatives = len(y) - positives
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def evaluate(y: np.ndarray, prob: np.ndarray) -> Metrics:
    """AUC, Gini, KS, Brier score and log loss of `prob` against 0/1 outcomes `y`."""
    y = np.asarray(y, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    if y.shape != prob.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError("y and prob must be non-empty 1-D arrays of the same length")
    if len(np.unique(y)) < 2:
        raise ValueError("the holdout has a single class: AUC is undefined")
    auc = _auc(y, prob)
    fpr, tpr = roc_curve(y, prob)
    clipped = np.clip(prob, _EPS, 1 - _EPS)
    return Metrics(
        auc=auc,
        gini=2 * auc - 1,
        ks=float(np.max(tpr - fpr)),
        brier=float(np.mean((prob - y) ** 2)),
        log_loss=float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
        default_rate=float(y.mean()),
        mean_prob_default=float(prob.mean()),
        rows=len(y),
    )


def calibration_bins(
    y: np.ndarray, prob: np.ndarray, *, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean predicted vs observed default rate in `bins` equal-count bins of `prob`."""
    order = np.argsort(prob, kind="mergesort")
    groups = [g for g in np.array_split(order, bins) if len(g)]
    predicted = np.array([prob[g].mean() for g in groups])
    observed = np.array([y[g].mean() for g in groups])
    counts = np.array([len(g) for g in groups])
    return predicted, observed, counts
