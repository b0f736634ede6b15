"""What is known about the real application_train.csv (shipped from `reference/`).

The TSVs are the published schema and statistics of the Home Credit file: header order,
pandas dtypes, `describe()` per column and the exact count of every categorical level.
The synthetic generator draws from them and `check-data` validates against them.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

OFFICIAL_ROWS = 307_511
OFFICIAL_SIZE_BYTES = 166_133_370
OFFICIAL_SHA256 = "52e96b895b1112e1c853f670e58372719c8441c5ed1c57ac2f7fad559d784f5f"
OFFICIAL_DEFAULT_RATE = 24_825 / OFFICIAL_ROWS

Dtype = Literal["int64", "float64", "object"]


@dataclass(frozen=True, slots=True)
class ColumnStats:
    """One row of the real file's `describe()`; numeric fields are NaN for text columns."""

    name: str
    dtype: Dtype
    missing: int
    mean: float
    std: float
    min: float
    p25: float
    p50: float
    p75: float
    max: float

    @property
    def missing_rate(self) -> float:
        return self.missing / OFFICIAL_ROWS


@dataclass(frozen=True, slots=True)
class Reference:
    """Schema and statistics of the real file."""

    columns: tuple[str, ...]
    stats: dict[str, ColumnStats]
    levels: dict[str, dict[str, int]]
    """Categorical column → level → count in the real file (missing values excluded)."""

    def dtype(self, column: str) -> Dtype:
        return self.stats[column].dtype

    def columns_of(self, dtype: Dtype) -> list[str]:
        return [c for c in self.columns if self.stats[c].dtype == dtype]


def _read_tsv(name: str) -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath("reference", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines(), delimiter="\t"))


def _number(text: str) -> float:
    return float(text) if text.strip() else math.nan


@cache
def load_reference() -> Reference:
    """The real file's schema and statistics, parsed once."""
    header = resources.files(__package__).joinpath("reference", "application_train.columns.txt")
    columns = tuple(line for line in header.read_text(encoding="utf-8").splitlines() if line)
    stats = {
        row["column"]: ColumnStats(
            name=row["column"],
            dtype=row["dtype"],  # type: ignore[arg-type]  # validated below
            missing=int(row["missing"]),
            mean=_number(row["mean"]),
            std=_number(row["std"]),
            min=_number(row["min"]),
            p25=_number(row["p25"]),
            p50=_number(row["p50"]),
            p75=_number(row["p75"]),
            max=_number(row["max"]),
        )
        for row in _read_tsv("application_train.describe.tsv")
    }
    levels: dict[str, dict[str, int]] = {}
    for row in _read_tsv("application_train.categorical_levels.tsv"):
        if row["level"] != "<NA>":
            levels.setdefault(row["column"], {})[row["level"]] = int(row["count"])
    if set(stats) != set(columns) or any(
        s.dtype not in ("int64", "float64", "object") for s in stats.values()
    ):
        raise RuntimeError("agi_credit/data/reference is inconsistent; reinstall the package")
    return Reference(columns=columns, stats=stats, levels=levels)
