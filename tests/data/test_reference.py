"""The official file's figures: read from the package's reference data, consistent with its
tables, and equal to the published figures."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

import agi_credit.data
from agi_credit.data import load_reference
from agi_credit.data import reference as reference_module
from agi_credit.data.reference import (
    FILE_FACTS,
    OFFICIAL_COLUMNS,
    OFFICIAL_DEFAULT_RATE,
    OFFICIAL_DEFAULTS,
    OFFICIAL_ROWS,
    OFFICIAL_SHA256,
    OFFICIAL_SIZE_BYTES,
)

REFERENCE = Path(reference_module.__file__).parent / "reference"
PUBLISHED = Path(os.environ.get("AGI_CREDIT_PUBLISHED_DATA", "/work/shared/data"))
"""Where the published facts about the real file live on a developer's machine."""
PUBLISHED_FACTS = PUBLISHED / "application_train.facts.md"


def _tsv(name: str) -> list[dict[str, str]]:
    with (REFERENCE / name).open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream, delimiter="\t"))


def _file_facts() -> dict[str, str]:
    return {row["fact"]: row["value"] for row in _tsv(FILE_FACTS)}


def test_the_official_figures_are_the_reference_files() -> None:
    facts = _file_facts()
    assert agi_credit.data.OFFICIAL_SHA256 == OFFICIAL_SHA256 == facts["sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", OFFICIAL_SHA256)
    assert OFFICIAL_ROWS == int(facts["rows"]) == 307_511
    assert OFFICIAL_COLUMNS == int(facts["columns"]) == 122
    assert OFFICIAL_SIZE_BYTES == int(facts["size_bytes"]) == 166_133_370
    assert OFFICIAL_DEFAULTS == int(facts["defaults"]) == 24_825
    assert OFFICIAL_DEFAULT_RATE == OFFICIAL_DEFAULTS / OFFICIAL_ROWS
    assert f"{OFFICIAL_DEFAULT_RATE:.2%}" == "8.07%"


def test_the_reference_tables_agree_with_the_file_figures() -> None:
    ref = load_reference()
    assert len(ref.columns) == OFFICIAL_COLUMNS
    for row in _tsv("application_train.describe.tsv"):
        assert int(row["non_null"]) + int(row["missing"]) == OFFICIAL_ROWS, row["column"]
    # describe() rounds TARGET's mean to 6 decimals: it must still round to the defaults.
    assert round(ref.stats["TARGET"].mean * OFFICIAL_ROWS) == OFFICIAL_DEFAULTS
    for column, levels in ref.levels.items():
        missing = ref.stats[column].missing
        assert sum(levels.values()) + missing == OFFICIAL_ROWS, column


def _published_cell(text: str, label: str) -> str:
    """The second cell of the Markdown table row whose first cell is `label`."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 1 and cells[0] == label:
            return cells[1]
    raise AssertionError(f"no row {label!r} in {PUBLISHED_FACTS}")


def _whole_number(cell: str) -> int:
    match = re.search(r"[0-9][0-9,]*", cell)
    assert match, cell
    return int(match.group().replace(",", ""))


def test_the_official_figures_are_the_published_ones() -> None:
    if not PUBLISHED_FACTS.is_file():
        pytest.skip(
            f"the published facts about the real file are not on this machine "
            f"({PUBLISHED_FACTS}; set AGI_CREDIT_PUBLISHED_DATA to their directory)"
        )
    text = PUBLISHED_FACTS.read_text(encoding="utf-8")
    sha256 = re.fullmatch(r"`([0-9a-f]{64})`", _published_cell(text, "SHA-256 of the CSV"))
    assert sha256, "the published SHA-256 is not a 64-digit hex string"
    assert sha256.group(1) == OFFICIAL_SHA256
    assert _whole_number(_published_cell(text, "data rows (header excluded)")) == OFFICIAL_ROWS
    assert _whole_number(_published_cell(text, "columns")) == OFFICIAL_COLUMNS
    assert _whole_number(_published_cell(text, "file size")) == OFFICIAL_SIZE_BYTES
    assert _whole_number(_published_cell(text, "1")) == OFFICIAL_DEFAULTS  # TARGET = 1
    # The packaged tables are the published ones; the file figures are our own summary of them.
    tables = sorted(p.name for p in REFERENCE.iterdir() if p.name != FILE_FACTS)
    assert len(tables) == 4
    for name in tables:
        assert (REFERENCE / name).read_bytes() == (PUBLISHED / name).read_bytes(), name
