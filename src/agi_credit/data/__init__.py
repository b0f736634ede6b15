"""The data room: the real file's reference statistics, the synthetic stand-in, checks."""

from __future__ import annotations

from agi_credit.data.check import CheckReport, DataError, check_csv
from agi_credit.data.reference import (
    OFFICIAL_DEFAULT_RATE,
    OFFICIAL_ROWS,
    OFFICIAL_SHA256,
    OFFICIAL_SIZE_BYTES,
    load_reference,
)
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
