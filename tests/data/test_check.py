"""check-data accepts the real schema and names what is wrong with anything else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agi_credit._files import sha256_of
from agi_credit.data import OFFICIAL_SHA256, OFFICIAL_SIZE_BYTES, CheckReport, DataError, check_csv
from tests.servers import run_cli


def _rewrite(
    source: Path,
    target: Path,
    edit_header: Callable[[str], str] | None = None,
    edit_row: Callable[[list[str], str], str] | None = None,
) -> Path:
    lines = source.read_text().splitlines()
    header = lines[0] if edit_header is None else edit_header(lines[0])
    rows = lines[1:50]
    if edit_row is not None:
        rows[4] = edit_row(lines[0].split(","), rows[4])
    target.write_text("\n".join([header, *rows]) + "\n")
    return target


def _set_field(header: list[str], row: str, column: str, value: str) -> str:
    # Rows of the synthetic file before a quoted level: split on commas is safe up to it.
    fields = row.split(",")
    fields[header.index(column)] = value
    return ",".join(fields)


def test_a_good_file_passes_and_is_not_the_official_one(small_csv: Path) -> None:
    report = check_csv(small_csv)
    assert report.ok, report.errors
    assert report.rows == 20_000
    assert not report.official
    assert 0.06 < (report.default_rate or 0) < 0.10
    assert any("official file has 307,511" in w for w in report.warnings)


def test_missing_and_unexpected_columns_are_named(small_csv: Path, tmp_path: Path) -> None:
    path = _rewrite(
        small_csv,
        tmp_path / "bad.csv",
        edit_header=lambda h: h.replace("AMT_CREDIT,", "AMT_CREDITS,"),
    )
    report = check_csv(path)
    assert "missing columns: AMT_CREDIT" in report.errors
    assert "unexpected columns: AMT_CREDITS" in report.errors


def test_a_text_value_in_a_number_column_is_found(small_csv: Path, tmp_path: Path) -> None:
    path = _rewrite(
        small_csv, tmp_path / "bad.csv", edit_row=lambda h, r: _set_field(h, r, "DAYS_BIRTH", "abc")
    )
    report = check_csv(path)
    assert report.errors == [
        "column DAYS_BIRTH: 1 value(s) are not integers (first at data row 5: 'abc')"
    ]


def test_a_target_outside_zero_one_is_rejected(small_csv: Path, tmp_path: Path) -> None:
    path = _rewrite(
        small_csv, tmp_path / "bad.csv", edit_row=lambda h, r: _set_field(h, r, "TARGET", "2")
    )
    report = check_csv(path)
    assert report.errors == ["TARGET must be 0 or 1: 1 row(s) are not (first at data row 5: '2')"]


def test_a_header_without_rows_is_rejected(small_csv: Path, tmp_path: Path) -> None:
    path = tmp_path / "header_only.csv"
    path.write_text(small_csv.read_text().splitlines()[0] + "\n")
    assert check_csv(path).errors == ["no data rows (only a header)"]


def test_a_ragged_row_makes_the_file_unreadable(small_csv: Path, tmp_path: Path) -> None:
    path = _rewrite(small_csv, tmp_path / "bad.csv", edit_row=lambda h, r: "1,2,3")
    (error,) = check_csv(path).errors
    assert error.startswith("not a readable CSV file: ")
    assert "Expected 122 columns, got 3" in error


def test_an_empty_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert check_csv(path).errors == ["not a readable CSV file: the file is empty"]


def test_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file not found"):
        check_csv(tmp_path / "nope.csv")


def test_a_file_that_is_not_the_official_one_is_reported_as_such(small_csv: Path) -> None:
    report = check_csv(small_csv)
    assert report.sha256 == sha256_of(small_csv) != OFFICIAL_SHA256
    assert report.official is False
    result = run_cli("check-data", small_csv)
    assert result.returncode == 0, result.stderr
    assert "not the official file" in result.stdout
    assert "byte-identical" not in result.stdout


def test_official_means_the_published_digest_and_nothing_else(tmp_path: Path) -> None:
    # The real file cannot be shipped; its published digest is checked in test_reference.
    def report(sha256: str) -> CheckReport:
        path = tmp_path / "application_train.csv"
        return CheckReport(path=path, size_bytes=OFFICIAL_SIZE_BYTES, sha256=sha256)

    assert report(OFFICIAL_SHA256).official is True
    assert report("0" * 64).official is False  # the official size is not enough


def test_cli_reports_ok_with_rows_and_default_rate(small_csv: Path) -> None:
    result = run_cli("check-data", small_csv)
    assert result.returncode == 0, result.stderr
    assert "20,000 rows" in result.stdout
    assert "% defaults" in result.stdout


def test_cli_exits_non_zero_and_names_the_problem(small_csv: Path, tmp_path: Path) -> None:
    path = _rewrite(
        small_csv, tmp_path / "bad.csv", edit_header=lambda h: h.replace(",TARGET,", ",LABEL,")
    )
    result = run_cli("check-data", path)
    assert result.returncode == 1
    assert "missing columns: TARGET" in result.stderr
    assert "unexpected columns: LABEL" in result.stderr


def test_cli_gen_data_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("precious real data\n")
    result = run_cli("gen-data", "--rows", "10", "--out", path)
    assert result.returncode == 1
    assert "--force" in result.stderr
    assert path.read_text() == "precious real data\n"
    forced = run_cli("gen-data", "--rows", "10", "--out", path, "--force", "--seed", "1")
    assert forced.returncode == 0, forced.stderr
    assert len(path.read_text().splitlines()) == 11
