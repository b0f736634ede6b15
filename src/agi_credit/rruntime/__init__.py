"""The R runtime room: load .rds models and score them in R (through rpy2)."""

from __future__ import annotations

from agi_credit.rruntime._r import (
    LinearForm,
    ModelShape,
    RecipeStep,
    RModel,
    linear_form,
    r_environment,
)
from agi_credit.rruntime.child import ScoringJob, predict_in_child
from agi_credit.rruntime.errors import RError

__all__ = [
    "LinearForm",
    "ModelShape",
    "RError",
    "RModel",
    "RecipeStep",
    "ScoringJob",
    "linear_form",
    "predict_in_child",
    "r_environment",
]
