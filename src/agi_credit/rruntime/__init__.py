"""The R runtime room: load .rds models and score them in R (through rpy2)."""

from __future__ import annotations

from agi_credit.rruntime._r import ModelShape, RModel, r_environment
from agi_credit.rruntime.errors import RError

__all__ = ["ModelShape", "RError", "RModel", "r_environment"]
