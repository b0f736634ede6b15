"""What is known about the real application_train.csv (shipped from `reference/`).

The TSVs are the published schema and statistics of the Home Credit file: header order,
pandas dtypes, `describe()` per column, the exact count of every categorical level, and the
file itself (rows, columns, size in bytes, SHA-256, defaults), from which the `OFFICIAL_*`
constants are read. The synthetic generator draws from them and `check-data` validates
against them.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Dtype = Literal["int64", "float64", "object"]

FILE_FACTS = "application_train.file.tsv"
"""The published facts about the real file as a whole: `fact`, `value`, `meaning` per row."""
_WHOLE_NUMBER_FACTS = ("rows", "columns", "size_bytes", "defaults")


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


def _read_file_facts() -> dict[str, str]:
    facts = {row["fact"]: row["value"] for row in _read_tsv(FILE_FACTS)}
    numbers_ok = all(facts.get(name, "").isdigit() for name in _WHOLE_NUMBER_FACTS)
    if not numbers_ok or not re.fullmatch(r"[0-9a-f]{64}", facts.get("sha256", "")):
        raise RuntimeError(f"agi_credit/data/reference/{FILE_FACTS} is incomplete; reinstall")
    return facts


_FILE = _read_file_facts()

OFFICIAL_ROWS = int(_FILE["rows"])
"""Data rows of the real file (307,511), header excluded."""
OFFICIAL_COLUMNS = int(_FILE["columns"])
"""Columns of the real file (122)."""
OFFICIAL_SIZE_BYTES = int(_FILE["size_bytes"])
"""Size of the real file in bytes (166,133,370)."""
OFFICIAL_SHA256 = _FILE["sha256"]
"""SHA-256 of the real file's bytes, as published."""
OFFICIAL_DEFAULTS = int(_FILE["defaults"])
"""Rows with TARGET = 1 in the real file (24,825)."""
OFFICIAL_DEFAULT_RATE = OFFICIAL_DEFAULTS / OFFICIAL_ROWS
"""The real file's default rate (8.07 %)."""


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
    if (
        set(stats) != set(columns)
        or len(columns) != OFFICIAL_COLUMNS
        or any(s.dtype not in ("int64", "float64", "object") for s in stats.values())
    ):
        raise RuntimeError("agi_credit/data/reference is inconsistent; reinstall the package")
    return Reference(columns=columns, stats=stats, levels=levels)
