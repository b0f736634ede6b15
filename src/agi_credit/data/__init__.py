"""The data room: the real file's reference statistics, the synthetic stand-in, checks.

The reference figures need nothing beyond the standard library; the checks (pyarrow) and
the generator (numpy, pandas) load on first use, so that the CLI and the auth sidecar,
which install neither, can import this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agi_credit.data.reference import (
    OFFICIAL_DEFAULT_RATE,
    OFFICIAL_ROWS,
    OFFICIAL_SHA256,
    OFFICIAL_SIZE_BYTES,
    load_reference,
)

if TYPE_CHECKING:
    from agi_credit.data.check import CheckReport, DataError, check_csv
    from agi_credit.data.synthetic import generate_frame, write_csv

__all__ = [
    "OFFICIAL_DEFAULT_RATE",
    "OFFICIAL_ROWS",
    "OFFICIAL_SHA256",
    "OFFICIAL_SIZE_BYTES",
    "CheckReport",
    "DataError",
    "check_csv",
    "generate_frame",
    "load_reference",
    "write_csv",
]

_ON_FIRST_USE = {
    "CheckReport": "check",
    "DataError": "check",
    "check_csv": "check",
    "generate_frame": "synthetic",
    "write_csv": "synthetic",
}


def __getattr__(name: str) -> Any:
    if name in _ON_FIRST_USE:
        return getattr(importlib.import_module(f"{__name__}.{_ON_FIRST_USE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
