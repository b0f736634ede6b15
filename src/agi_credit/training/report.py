"""The report of one version: ROC and calibration plots and a model card (markdown)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agi_credit.store import ModelEntry
from agi_credit.training.metrics import calibration_bins, roc_curve

__all__ = ["write_model_card", "write_plots"]

ROC_PNG = "roc.png"
CALIBRATION_PNG = "calibration.png"
MODEL_CARD = "model_card.md"


def write_plots(out_dir: Path, y: np.ndarray, prob: np.ndarray, *, auc: float) -> None:
    """roc.png and calibration.png of the holdout predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, tpr = roc_curve(y, prob)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot(fpr, tpr, label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, holdout")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / ROC_PNG)
    plt.close(fig)

    predicted, observed, _ = calibration_bins(y, prob)
    top = max(float(predicted.max()), float(observed.max())) * 1.1
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(predicted, observed, marker="o", label="model (deciles)")
    ax.set(
        xlabel="mean predicted P(default)",
        ylabel="observed default rate",
        title="Calibration, holdout",
        xlim=(0, top),
        ylim=(0, top),
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out_dir / CALIBRATION_PNG)
    plt.close(fig)


def write_model_card(out_dir: Path, entry: ModelEntry) -> Path:
    """model_card.md: from model details to caveats, for the risk committee."""
    metrics = entry.metrics or {}
    data = entry.training_data or {}
    runtime = entry.runtime or {}
    gate = entry.gate or {}
    packages = ", ".join(f"{k} {v}" for k, v in (runtime.get("packages") or {}).items())
    metric_rows = "\n".join(
        f"| {name} | {value:.4f} |"
        if isinstance(value, float) and name != "rows"
        else f"| {name} | {value:,.0f} |"
        for name, value in metrics.items()
    )
    card = f"""# Model card: agi-credit {entry.version}

## Model details
- Version: **{entry.version}**, registered {entry.created_at} UTC, status at registration:
  **{"promoted to active" if gate.get("passed") else "candidate"}**.
- Algorithm: logistic regression (R `glm`, binomial) after median imputation and
  normalisation (R `recipes`), as written by the data scientists in `train.R`.
- Features: {", ".join(f"`{f}`" for f in entry.features)}.
- Decision threshold: P(default) ≥ {entry.decision_threshold} → `prediction` 1.
- Artifact: `{entry.artifact.path if entry.artifact else "?"}`, sha256
  `{entry.artifact.sha256 if entry.artifact else "?"}`,
  {entry.artifact.size_bytes if entry.artifact else 0:,} bytes.
- Built with R {runtime.get("r_version", "?")} ({packages or "packages unknown"});
  train.R sha256 `{runtime.get("train_script_sha256", "?")}`.

## Intended use
Scoring the probability that a consumer-credit applicant defaults (Home Credit
application data), as one input to a credit decision taken under the bank's policy.
Not for use as the sole basis of a decision, nor on populations unlike the training data.

## Training data
- File: `{data.get("path", "?")}` ({data.get("rows", 0):,} rows), sha256
  `{data.get("sha256", "?")}`{
        " — the official Home Credit file"
        if data.get("official")
        else " — not the official file (a sample or the synthetic stand-in)"
    }.
- Split: {data.get("train_rows", 0):,} rows for training and {data.get("holdout_rows", 0):,}
  held out (stratified on TARGET, seed {data.get("split_seed", "?")}).

## Evaluation (holdout)
| metric | value |
|---|---|
{metric_rows}

![ROC curve]({ROC_PNG})
![Calibration]({CALIBRATION_PNG})

## Promotion gate
{gate.get("reason", "no decision recorded")}.

## Caveats and ethical considerations
- Four application features only: the model ignores external scores (EXT_SOURCE_*) and
  credit history, so its discrimination is modest; monitor AUC and calibration in use.
- Age (DAYS_BIRTH) is a feature: check the use of age against the applicable
  anti-discrimination rules before deciding on it, and document the justification.
- Income and amounts have heavy right tails; normalisation uses the training mean and
  standard deviation, so extreme inputs give extreme log-odds.
- A model trained on the synthetic stand-in demonstrates the pipeline, not credit risk.
"""
    path = out_dir / MODEL_CARD
    path.write_text(card, encoding="utf-8")
    return path
