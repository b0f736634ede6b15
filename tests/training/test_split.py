"""The split is stratified, seeded, and copies every line exactly once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agi_credit.training import TrainingError
from agi_credit.training.split import read_columns, stratified_split


def test_every_line_lands_in_exactly_one_side(small_csv: Path, tmp_path: Path) -> None:
    split = stratified_split(small_csv, tmp_path, holdout_fraction=0.2, seed=1)
    source = small_csv.read_bytes().splitlines()
    train = split.train_path.read_bytes().splitlines()
    holdout = split.holdout_path.read_bytes().splitlines()
    assert train[0] == holdout[0] == source[0]
    assert sorted(train[1:] + holdout[1:]) == sorted(source[1:])
    assert (split.train_rows, split.holdout_rows) == (len(train) - 1, len(holdout) - 1)
    assert split.holdout_rows == pytest.approx(0.2 * (len(source) - 1), abs=2)


def test_both_sides_keep_the_default_rate(small_csv: Path, tmp_path: Path) -> None:
    split = stratified_split(small_csv, tmp_path, holdout_fraction=0.2, seed=1)
    train_rate = read_columns(split.train_path, ["TARGET"])["TARGET"].mean()
    assert split.holdout_target.mean() == pytest.approx(train_rate, abs=0.001)


def test_same_seed_same_split(small_csv: Path, tmp_path: Path) -> None:
    holdouts = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        split = stratified_split(small_csv, tmp_path / name, holdout_fraction=0.2, seed=5)
        holdouts.append(split.holdout_path.read_bytes())
    assert holdouts[0] == holdouts[1]


def test_too_few_defaults_to_split(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("TARGET,X\n" + "0,1\n" * 10 + "1,1\n")
    with pytest.raises(TrainingError, match="need at least 2 of each"):
        stratified_split(data, tmp_path, holdout_fraction=0.2, seed=1)


def test_read_columns_gives_nan_for_empty_fields(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("A,B\n1,\n,2.5\n")
    columns = read_columns(data, ["A", "B"])
    np.testing.assert_array_equal(columns["B"], [np.nan, 2.5])
    assert np.isnan(columns["A"][1])
