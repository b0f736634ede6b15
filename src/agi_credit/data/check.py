"""Validate a user's application_train.csv against the real file's schema."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from agi_credit._errors import AgiCreditError
from agi_credit._files import sha256_of
from agi_credit.data.reference import (
    OFFICIAL_DEFAULT_RATE,
    OFFICIAL_ROWS,
    OFFICIAL_SHA256,
    OFFICIAL_SIZE_BYTES,
    load_reference,
)

__all__ = ["CheckReport", "DataError", "check_csv"]

_PATTERNS = {
    "int64": r"^[+-]?[0-9]+$",
    "float64": r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^(nan|NaN|inf|-inf)$",
}
_SHOWN_NAMES = 8


class DataError(AgiCreditError):
    """A dataset is missing, unreadable or does not have the expected shape."""


@dataclass(slots=True)
class CheckReport:
    """What `check_csv` found: errors make the file unusable, warnings do not."""

    path: Path
    size_bytes: int
    sha256: str
    rows: int = 0
    default_rate: float | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def official(self) -> bool:
        """Byte-identical to the published Home Credit application_train.csv."""
        return self.sha256 == OFFICIAL_SHA256


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_NAMES])
    return shown + (f" (and {len(names) - _SHOWN_NAMES} more)" if len(names) > _SHOWN_NAMES else "")


def check_csv(path: Path) -> CheckReport:
    """Check header, per-column types, TARGET and row count of the CSV at `path`.

    Raises `DataError` only when the file cannot be read at all; everything else is
    reported in the returned `CheckReport`.
    """
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    report = CheckReport(path=path, size_bytes=path.stat().st_size, sha256=sha256_of(path))
    if report.official and report.size_bytes == OFFICIAL_SIZE_BYTES:
        report.rows = OFFICIAL_ROWS
        report.default_rate = OFFICIAL_DEFAULT_RATE
        return report  # the published file itself: nothing to find
    try:
        table = _read_as_text(path)
    except pa.ArrowInvalid as exc:
        report.errors.append(f"not a readable CSV file: {_arrow_message(exc)}")
        return report
    report.rows = table.num_rows
    _check_header(table.column_names, report)
    if report.rows == 0:
        report.errors.append("no data rows (only a header)")
    _check_types(table, report)
    _check_target(table, report)
    if report.ok and report.rows != OFFICIAL_ROWS:
        report.warnings.append(
            f"{report.rows:,} rows; the official file has {OFFICIAL_ROWS:,} "
            "(fine for a sample or a synthetic stand-in)"
        )
    return report


def _read_as_text(path: Path) -> pa.Table:
    with path.open("rb") as stream:
        header = stream.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    names = next(csv.reader([header]), [])
    if not names or names == [""]:
        raise pa.ArrowInvalid("the file is empty")
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


def _arrow_message(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "…"


def _check_header(names: list[str], report: CheckReport) -> None:
    expected = list(load_reference().columns)
    missing = [c for c in expected if c not in names]
    unexpected = [c for c in names if c not in expected]
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if missing:
        report.errors.append(f"missing columns: {_names(missing)}")
    if unexpected:
        report.errors.append(f"unexpected columns: {_names(unexpected)}")
    if duplicated:
        report.errors.append(f"duplicated columns: {_names(duplicated)}")
    if not (missing or unexpected or duplicated) and names != expected:
        report.warnings.append("columns are in a different order than in the official file")


def _check_types(table: pa.Table, report: CheckReport) -> None:
    reference = load_reference()
    for name in table.column_names:
        if name not in reference.stats:
            continue
        dtype = reference.dtype(name)
        column = table.column(name)
        if dtype == "object":
            continue
        valid = pc.match_substring_regex(column, _PATTERNS[dtype])
        bad = pc.invert(pc.fill_null(valid, True))
        n_bad = pc.sum(bad).as_py() or 0
        if n_bad:
            first = pc.index(bad, True).as_py()
            value = column[first].as_py()
            kind = "integers" if dtype == "int64" else "numbers"
            report.errors.append(
                f"column {name}: {n_bad:,} value(s) are not {kind} "
                f"(first at data row {first + 1}: {value!r})"
            )
        elif dtype == "int64" and column.null_count:
            report.warnings.append(
                f"column {name}: {column.null_count:,} empty value(s); the official file has none"
            )


def _check_target(table: pa.Table, report: CheckReport) -> None:
    if "TARGET" not in table.column_names or report.rows == 0:
        return
    target = table.column("TARGET")
    is_binary = pc.is_in(target, value_set=pa.array(["0", "1"]))
    bad = pc.invert(pc.fill_null(is_binary, False))
    n_bad = pc.sum(bad).as_py() or 0
    if n_bad:
        first = pc.index(bad, True).as_py()
        report.errors.append(
            f"TARGET must be 0 or 1: {n_bad:,} row(s) are not "
            f"(first at data row {first + 1}: {target[first].as_py()!r})"
        )
        return
    ones = pc.sum(pc.equal(target, "1")).as_py() or 0
    report.default_rate = ones / report.rows
    if ones in (0, report.rows):
        report.errors.append(f"TARGET has a single class ({'1' if ones else '0'} in every row)")
