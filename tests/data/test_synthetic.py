"""The synthetic application_train.csv matches the real file's schema and statistics."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agi_credit.data import generate_frame, load_reference, write_csv
from agi_credit.data.reference import OFFICIAL_DEFAULT_RATE, OFFICIAL_ROWS
from agi_credit.data.synthetic import PENSIONER_SENTINEL

ROWS = 100_000
REF = load_reference()

# Tolerances, stated once: shares in absolute terms, quantiles relative to the real IQR.
SHARE_TOLERANCE = 0.01
MISSING_TOLERANCE = 0.01
QUANTILE_TOLERANCE = 0.15
TARGET_TOLERANCE = 0.005


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_frame(ROWS, seed=11)


@pytest.fixture(scope="module")
def written(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "application_train.csv"
    write_csv(frame, path)
    return path


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    ranks = pd.Series(score).rank().to_numpy()
    pos = int(y.sum())
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos)))


def _logistic_auc(frame: pd.DataFrame, columns: list[str]) -> float:
    """In-sample AUC of a logistic regression (Newton steps) with median imputation."""
    x = frame[columns].astype(float)
    x = (x.fillna(x.median()) - x.mean()) / x.std()
    design = np.c_[np.ones(len(x)), x.to_numpy()]
    y = frame["TARGET"].to_numpy()
    beta = np.zeros(design.shape[1])
    for _ in range(20):
        p = 1 / (1 + np.exp(-design @ beta))
        hessian = design.T @ (design * (p * (1 - p))[:, None])
        beta += np.linalg.solve(hessian, design.T @ (y - p))
    return _auc(design @ beta, y)


def test_header_is_the_real_header_in_the_real_order(written: Path) -> None:
    with written.open() as stream:
        header = next(csv.reader(stream))
    assert header == list(REF.columns)
    assert len(header) == 122


def test_pandas_reads_back_the_real_dtypes(written: Path) -> None:
    back = pd.read_csv(written)
    assert len(back) == ROWS
    for column in REF.columns:
        expected = REF.dtype(column)
        actual = "object" if back[column].dtype == object else str(back[column].dtype)
        assert actual == expected, column


def test_values_are_written_as_in_the_real_file(written: Path) -> None:
    with written.open() as stream:
        rows = list(csv.reader(stream))
    header, first = rows[0], rows[1]
    row = dict(zip(header, first, strict=True))
    assert row["DAYS_BIRTH"].lstrip("-").isdigit()  # int: no decimal point
    assert "." in row["AMT_CREDIT"]  # float: always a decimal point
    raw = written.read_text()
    assert '"Spouse, partner"' in raw  # levels with commas are quoted
    assert ",," in raw  # missing values are empty fields
    assert "nan" not in raw.lower().replace("nanny", "")


def test_every_level_has_its_real_frequency(frame: pd.DataFrame) -> None:
    for column, levels in REF.levels.items():
        observed = frame[column].value_counts(normalize=True, dropna=True)
        assert set(observed.index) <= set(levels), column
        total = sum(levels.values())
        for level, count in levels.items():
            assert observed.get(level, 0.0) == pytest.approx(count / total, abs=SHARE_TOLERANCE), (
                column,
                level,
            )


def test_every_column_has_its_real_missing_rate(frame: pd.DataFrame) -> None:
    for column in REF.columns:
        expected = REF.stats[column].missing_rate
        assert frame[column].isna().mean() == pytest.approx(expected, abs=MISSING_TOLERANCE), column


@pytest.mark.parametrize(
    "group",
    [
        [f"AMT_REQ_CREDIT_BUREAU_{p}" for p in ("HOUR", "DAY", "WEEK", "MON", "QRT", "YEAR")],
        [f"{k}_{d}_CNT_SOCIAL_CIRCLE" for k in ("OBS", "DEF") for d in ("30", "60")],
        ["APARTMENTS_AVG", "APARTMENTS_MODE", "APARTMENTS_MEDI"],
        ["COMMONAREA_AVG", "COMMONAREA_MODE", "COMMONAREA_MEDI"],
    ],
)
def test_shared_missingness_groups_miss_the_same_rows(
    frame: pd.DataFrame, group: list[str]
) -> None:
    masks = frame[group].isna()
    assert masks.any().all()
    assert (masks.nunique(axis=1) == 1).all()


def test_building_columns_nest_their_missingness(frame: pd.DataFrame) -> None:
    # A row missing the commonest measure misses the rarer ones too.
    rarer = frame["COMMONAREA_AVG"].isna()
    commoner = frame["APARTMENTS_AVG"].isna()
    assert (rarer | ~commoner).all()


def test_numeric_columns_follow_the_real_quantiles(frame: pd.DataFrame) -> None:
    for column in REF.columns:
        s = REF.stats[column]
        if s.dtype == "object" or column in ("SK_ID_CURR", "TARGET", "DAYS_EMPLOYED"):
            continue
        values = frame[column].dropna()
        scale = max(s.p75 - s.p25, s.std * 0.5)
        for q, real in ((0.25, s.p25), (0.5, s.p50), (0.75, s.p75)):
            assert values.quantile(q) == pytest.approx(real, abs=QUANTILE_TOLERANCE * scale), (
                column,
                q,
            )
        assert values.min() >= s.min and values.max() <= s.max, column


def test_heavy_right_tails_are_kept(frame: pd.DataFrame) -> None:
    income = frame["AMT_INCOME_TOTAL"]
    assert income.mean() == pytest.approx(REF.stats["AMT_INCOME_TOTAL"].mean, rel=0.1)
    assert income.quantile(0.999) > 4 * REF.stats["AMT_INCOME_TOTAL"].p75


def test_pensioners_carry_the_sentinel_and_xna(frame: pd.DataFrame) -> None:
    sentinel = frame["DAYS_EMPLOYED"] == PENSIONER_SENTINEL
    # The real file has as many sentinel rows as ORGANIZATION_TYPE XNA rows (55,374).
    pensioners = REF.levels["ORGANIZATION_TYPE"]["XNA"]
    assert sentinel.mean() == pytest.approx(pensioners / OFFICIAL_ROWS, abs=0.005)
    assert (frame.loc[sentinel, "ORGANIZATION_TYPE"] == "XNA").all()
    assert (frame.loc[~sentinel, "ORGANIZATION_TYPE"] != "XNA").all()
    assert (frame.loc[sentinel, "NAME_INCOME_TYPE"] == "Pensioner").mean() > 0.99
    assert (frame.loc[~sentinel, "DAYS_EMPLOYED"] <= 0).all()


def test_the_sentinel_is_the_real_maximum_of_days_employed() -> None:
    assert REF.stats["DAYS_EMPLOYED"].max == PENSIONER_SENTINEL


def test_goods_price_is_mostly_at_most_the_credit(frame: pd.DataFrame) -> None:
    both = frame[["AMT_GOODS_PRICE", "AMT_CREDIT"]].dropna()
    assert (both["AMT_GOODS_PRICE"] <= both["AMT_CREDIT"]).mean() > 0.9


def test_target_has_the_real_default_rate(frame: pd.DataFrame) -> None:
    assert frame["TARGET"].mean() == pytest.approx(OFFICIAL_DEFAULT_RATE, abs=TARGET_TOLERANCE)


def test_target_depends_on_features_in_the_real_directions(frame: pd.DataFrame) -> None:
    target = frame["TARGET"]
    assert frame["DAYS_BIRTH"].corr(target) > 0.03  # younger (less negative) → more
    for source in ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"):
        assert frame[source].corr(target) < -0.1, source
    by_gender = frame.groupby("CODE_GENDER")["TARGET"].mean()
    assert by_gender["M"] > by_gender["F"] + 0.015
    for amount in ("AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_GOODS_PRICE"):
        assert abs(frame[amount].corr(target)) < 0.05, amount


def test_four_feature_glm_beats_chance_and_ext_sources_beat_it(frame: pd.DataFrame) -> None:
    four = ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE"]
    auc_four = _logistic_auc(frame, four)
    auc_ext = _logistic_auc(frame, [*four, "EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"])
    assert auc_four > 0.56
    assert auc_ext > auc_four + 0.08


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, again, other = (generate_frame(2_000, seed=s) for s in (3, 3, 4))
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_ids_are_unique_and_ascending(frame: pd.DataFrame) -> None:
    ids = frame["SK_ID_CURR"]
    assert ids.is_unique and ids.is_monotonic_increasing


def test_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate_frame(0, seed=1)
