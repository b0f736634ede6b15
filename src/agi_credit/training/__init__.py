"""The training room: split, run the data scientist's train.R, evaluate, register, gate."""

from __future__ import annotations

from agi_credit.training.errors import TrainingError
from agi_credit.training.gate import GateDecision, decide
from agi_credit.training.job import TrainingResult, run_training
from agi_credit.training.metrics import Metrics, evaluate

__all__ = [
    "GateDecision",
    "Metrics",
    "TrainingError",
    "TrainingResult",
    "decide",
    "evaluate",
    "run_training",
]
