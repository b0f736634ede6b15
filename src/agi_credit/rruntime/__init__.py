"""The R runtime room: load .rds models and score them in R (through rpy2).

Importing this package does not start R. The embedded R session starts on first use of a
name that needs it (`RModel`, `linear_form`, `r_environment`…), or explicitly with `start()`,
which a server calls on its main thread before it serves. `predict_in_child`, `RThread` and
`rscript_path` need no embedded R.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agi_credit.rruntime.child import ScoringJob, predict_in_child, rscript_path
from agi_credit.rruntime.errors import RError
from agi_credit.rruntime.thread import RThread

if TYPE_CHECKING:
    from agi_credit.rruntime._r import (
        LinearForm,
        ModelShape,
        RecipeStep,
        RModel,
        linear_form,
        r_environment,
    )

__all__ = [
    "LinearForm",
    "ModelShape",
    "RError",
    "RModel",
    "RThread",
    "RecipeStep",
    "ScoringJob",
    "is_started",
    "linear_form",
    "predict_in_child",
    "r_environment",
    "rscript_path",
    "start",
]

_EMBEDDED = frozenset(
    {"LinearForm", "ModelShape", "RModel", "RecipeStep", "linear_form", "r_environment"}
)
_MODULE = "agi_credit.rruntime._r"


def start() -> None:
    """Start the embedded R session (rpy2) now, on the calling thread; idempotent."""
    importlib.import_module(_MODULE)


def is_started() -> bool:
    """Whether this process runs an embedded R session."""
    import sys

    return _MODULE in sys.modules


def __getattr__(name: str) -> Any:
    if name in _EMBEDDED:
        return getattr(importlib.import_module(_MODULE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
