"""A synthetic application_train.csv with the real file's schema and statistics.

Every column follows its published marginal (`reference`): text levels with their real
frequencies, binary flags with their real rates, counts as negative binomials with the
real mean and variance, and continuous columns through a piecewise inverse CDF that goes
through the real min / quartiles / max with tails shaped to match the real mean (and, for
heavy right tails, the real standard deviation; see `quantiles`). Rows are tied together by
a few latent factors (age, wealth, credit quality, building size) and by the rules the real
data is known to follow: pensioners carry DAYS_EMPLOYED = 365243 and ORGANIZATION_TYPE XNA,
AMT_GOODS_PRICE ≤ AMT_CREDIT mostly, CNT_FAM_MEMBERS counts the children, missing values
come in the real shared-missingness groups. TARGET is drawn from a logistic model in the
real directions and calibrated to the real default rate.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from agi_credit._files import atomic_writer
from agi_credit.data.quantiles import QuantileCurve, fitted_curve
from agi_credit.data.reference import (
    OFFICIAL_DEFAULT_RATE,
    OFFICIAL_ROWS,
    ColumnStats,
    Reference,
    load_reference,
)

__all__ = ["generate_frame", "write_csv"]

PENSIONER_SENTINEL = 365_243
"""DAYS_EMPLOYED of pensioners in the real file (its maximum in `describe()`)."""
_TOP_SHARE = 1 / OFFICIAL_ROWS
"""The share of one row in the real file: a curve's top segment, up to the real maximum."""
_DAYS_PER_YEAR = 365.25
_WORKED_YEARS_QUARTILES = (8.7, 4.5, 2.1)
"""Years employed of the real file's working applicants (DAYS_EMPLOYED ≠ 365243) at the
quartiles of DAYS_EMPLOYED (25 %, 50 %, 75 %): published in years, rounded to 0.1 year."""
_FIRST_JOB_AGE_DAYS = 18 * 365
_BUILDING_SUFFIXES = ("_AVG", "_MODE", "_MEDI")
_BUILDING_TEXT = (
    "FONDKAPREMONT_MODE",
    "HOUSETYPE_MODE",
    "WALLSMATERIAL_MODE",
    "EMERGENCYSTATE_MODE",
)
_WHOLE_NUMBER_FLOATS = ("DAYS_", "OWN_CAR_AGE", "CNT_", "OBS_", "DEF_", "AMT_REQ_")
_CSV_CHUNK_ROWS = 25_000


@dataclass(frozen=True, slots=True)
class _RealCounts:
    """Counts in the real file that tie the employment columns together, read from the
    reference tables (`categorical_levels` and `describe`)."""

    pensioners: int
    """Rows with DAYS_EMPLOYED = 365243 (55,374). Published as such, and the same as the
    count of ORGANIZATION_TYPE XNA, which is where it is read from."""
    pension_income: int
    """Rows with NAME_INCOME_TYPE Pensioner (55,362); the generator gives the other
    pensioners (12) the income type Unemployed."""
    no_occupation: int
    """Rows without OCCUPATION_TYPE (96,391); the generator counts every pensioner among
    them."""

    @classmethod
    def of(cls, ref: Reference) -> _RealCounts:
        return cls(
            pensioners=ref.levels["ORGANIZATION_TYPE"]["XNA"],
            pension_income=ref.levels["NAME_INCOME_TYPE"]["Pensioner"],
            no_occupation=ref.stats["OCCUPATION_TYPE"].missing,
        )

    @property
    def pensioner_rate(self) -> float:
        return self.pensioners / OFFICIAL_ROWS

    @property
    def pension_income_rate(self) -> float:
        """The share of pensioners whose income type is Pensioner."""
        return self.pension_income / self.pensioners

    @property
    def no_occupation_rate(self) -> float:
        """The share of working applicants (not pensioners) without an occupation."""
        return (self.no_occupation - self.pensioners) / (OFFICIAL_ROWS - self.pensioners)


def generate_frame(rows: int, *, seed: int) -> pd.DataFrame:
    """`rows` synthetic applications, columns in the real order with the real dtypes."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    return _Generator(rows, np.random.default_rng(seed)).frame()


def write_csv(
    frame: pd.DataFrame, path: Path, *, on_progress: Callable[[int], None] | None = None
) -> None:
    """Write `frame` as the real file is written: ints plain, floats with a decimal point,
    missing values empty, text quoted only where needed. Written atomically: a reader
    never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as raw:
        out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        for start in range(0, len(frame), _CSV_CHUNK_ROWS):
            chunk = frame.iloc[start : start + _CSV_CHUNK_ROWS]
            chunk.to_csv(
                out,
                index=False,
                header=start == 0,
                na_rep="",
                quoting=csv.QUOTE_MINIMAL,
                lineterminator="\n",
            )
            if on_progress is not None:
                on_progress(len(chunk))
        out.detach()  # flushes; the atomic writer syncs and closes the file


class _Generator:
    """Draws one synthetic data set; one method per group of related columns."""

    def __init__(self, rows: int, rng: np.random.Generator) -> None:
        self.n = rows
        self.rng = rng
        self.ref = load_reference()
        self.counts = _RealCounts.of(self.ref)
        self.cols: dict[str, np.ndarray] = {}
        # Latent standard normals that tie related columns together.
        self.z_age = rng.standard_normal(rows)
        self.z_wealth = rng.standard_normal(rows)
        self.z_quality = rng.standard_normal(rows)

    def frame(self) -> pd.DataFrame:
        self._identity()
        self._person()
        self._employment()
        self._amounts()
        self._scores()
        self._building()
        self._remaining()
        self._apply_missing_groups()
        self._target()
        return self._assemble()

    # -- helpers -------------------------------------------------------------------------

    def _stats(self, column: str) -> ColumnStats:
        return self.ref.stats[column]

    def _uniform_from(self, z: np.ndarray) -> np.ndarray:
        """Uniforms in the rank order of `z` (a Gaussian copula without a normal CDF)."""
        return (np.argsort(np.argsort(z, kind="stable")) + 0.5) / self.n

    def _mixed(self, *parts: tuple[float, np.ndarray]) -> np.ndarray:
        """A standard normal that loads on the given latents, the rest being noise."""
        loadings = sum(w * w for w, _ in parts)
        z = sum(w * latent for w, latent in parts) + math.sqrt(max(1 - loadings, 0.0)) * (
            self.rng.standard_normal(self.n)
        )
        return np.asarray(z)

    def _continuous(self, column: str, u: np.ndarray | None = None) -> np.ndarray:
        s = self._stats(column)
        u = self.rng.random(self.n) if u is None else u
        curve = fitted_curve(
            (s.min, s.p25, s.p50, s.p75, s.max), mean=s.mean, std=s.std, top_share=_TOP_SHARE
        )
        return curve.inverse(u)

    def _levels(
        self, column: str, *, exclude: tuple[str, ...] = (), size: int | None = None
    ) -> np.ndarray:
        levels = {k: v for k, v in self.ref.levels[column].items() if k not in exclude}
        names = np.array(list(levels), dtype=object)
        p = np.array(list(levels.values()), dtype=float)
        return self.rng.choice(names, size=self.n if size is None else size, p=p / p.sum())

    def _counts(self, column: str) -> np.ndarray:
        """Negative binomial (or Poisson) counts with the real mean and variance."""
        s = self._stats(column)
        mean, var = s.mean, s.std**2
        if var > mean * 1.0001:
            r = mean * mean / (var - mean)
            draws = self.rng.negative_binomial(r, r / (r + mean), self.n)
        else:
            draws = self.rng.poisson(mean, self.n)
        return np.minimum(draws, s.max).astype(float)

    def _flag(self, column: str) -> np.ndarray:
        return (self.rng.random(self.n) < self._stats(column).mean).astype(np.int64)

    # -- column groups ------------------------------------------------------------------

    def _identity(self) -> None:
        s = self._stats("SK_ID_CURR")
        span = max(int(s.max - s.min) + 1, self.n)
        ids = self.rng.choice(span, size=self.n, replace=False) + int(s.min)
        self.cols["SK_ID_CURR"] = np.sort(ids).astype(np.int64)
        self.cols["NAME_CONTRACT_TYPE"] = self._levels("NAME_CONTRACT_TYPE")
        self.cols["WEEKDAY_APPR_PROCESS_START"] = self._levels("WEEKDAY_APPR_PROCESS_START")

    def _person(self) -> None:
        u_age = self._uniform_from(self.z_age)  # high = old
        self.cols["DAYS_BIRTH"] = np.round(self._continuous("DAYS_BIRTH", 1 - u_age))
        self.cols["CODE_GENDER"] = self._levels("CODE_GENDER")
        self.cols["NAME_FAMILY_STATUS"] = self._levels("NAME_FAMILY_STATUS")
        children = self._counts("CNT_CHILDREN")
        self.cols["CNT_CHILDREN"] = children
        couple = np.isin(self.cols["NAME_FAMILY_STATUS"], ["Married", "Civil marriage"])
        self.cols["CNT_FAM_MEMBERS"] = children + np.where(couple, 2.0, 1.0)
        self.cols["NAME_EDUCATION_TYPE"] = self._levels("NAME_EDUCATION_TYPE")
        self.cols["NAME_HOUSING_TYPE"] = self._levels("NAME_HOUSING_TYPE")
        self.cols["FLAG_OWN_REALTY"] = self._levels("FLAG_OWN_REALTY")
        own_car = self._levels("FLAG_OWN_CAR")
        self.cols["FLAG_OWN_CAR"] = own_car
        car_age = np.round(self._continuous("OWN_CAR_AGE"))
        # Only car owners have a car age (the real file: all but 5 of them).
        self.cols["OWN_CAR_AGE"] = np.where(own_car == "Y", car_age, np.nan)
        self.cols["DAYS_REGISTRATION"] = np.round(self._continuous("DAYS_REGISTRATION"))
        self.cols["DAYS_ID_PUBLISH"] = np.round(self._continuous("DAYS_ID_PUBLISH"))
        self.cols["DAYS_LAST_PHONE_CHANGE"] = np.round(self._continuous("DAYS_LAST_PHONE_CHANGE"))

    def _employment(self) -> None:
        # Pensioners are the oldest applicants (with noise), exactly the real share of rows.
        age_years = -self.cols["DAYS_BIRTH"] / _DAYS_PER_YEAR
        score = age_years + self.rng.logistic(0, 3, self.n)
        pensioner = score >= np.quantile(score, 1 - self.counts.pensioner_rate)
        self.pensioner = pensioner

        income_type = self._levels("NAME_INCOME_TYPE", exclude=("Pensioner",))
        pension_type = np.where(
            self.rng.random(self.n) < self.counts.pension_income_rate, "Pensioner", "Unemployed"
        )
        self.cols["NAME_INCOME_TYPE"] = np.where(pensioner, pension_type, income_type)
        org = self._levels("ORGANIZATION_TYPE", exclude=("XNA",))
        self.cols["ORGANIZATION_TYPE"] = np.where(pensioner, "XNA", org)

        # Working applicants: from the real minimum of DAYS_EMPLOYED through the published
        # quartiles of the non-sentinel rows to 0 (started today).
        p25, p50, p75 = (-years * _DAYS_PER_YEAR for years in _WORKED_YEARS_QUARTILES)
        worked = np.round(
            QuantileCurve(
                knots=(self._stats("DAYS_EMPLOYED").min, p25, p50, p75, 0.0),
                top_share=_TOP_SHARE,
                lower_power=0.35,
            ).inverse(self.rng.random(self.n))
        )
        worked = np.maximum(worked, self.cols["DAYS_BIRTH"] + _FIRST_JOB_AGE_DAYS)
        self.cols["DAYS_EMPLOYED"] = np.where(pensioner, PENSIONER_SENTINEL, worked)
        self.cols["FLAG_EMP_PHONE"] = (~pensioner).astype(np.int64)
        occupation = self._levels("OCCUPATION_TYPE").astype(object)
        no_occupation = self.rng.random(self.n) < self.counts.no_occupation_rate
        occupation[pensioner | no_occupation] = None
        self.cols["OCCUPATION_TYPE"] = occupation

    def _amounts(self) -> None:
        u_income = self._uniform_from(self._mixed((0.6, self.z_wealth)))
        income = self._continuous("AMT_INCOME_TOTAL", u_income)
        self.cols["AMT_INCOME_TOTAL"] = np.round(income / 450) * 450

        z_credit = self._mixed((0.45, self.z_wealth), (0.25, self.z_age))
        u_credit = self._uniform_from(z_credit)
        s_credit = self._stats("AMT_CREDIT")
        credit = np.round(self._continuous("AMT_CREDIT", u_credit) * 2) / 2
        self.cols["AMT_CREDIT"] = credit

        # Goods are usually a little cheaper than the credit (fees, insurance), sometimes
        # equal (revolving loans), rarely dearer.
        ratio = 1.0 - self.rng.beta(1.3, 9.0, self.n)
        ratio = np.where(self.rng.random(self.n) < 0.12, 1.0, ratio)
        ratio = np.where(
            self.rng.random(self.n) < 0.02, 1.0 + self.rng.random(self.n) * 0.15, ratio
        )
        goods = np.clip(np.round(credit * ratio / 4500) * 4500, s_credit.min * 0.9, s_credit.max)
        self.cols["AMT_GOODS_PRICE"] = goods
        u_annuity = self._uniform_from(self._mixed((0.77, z_credit)))
        self.cols["AMT_ANNUITY"] = np.round(self._continuous("AMT_ANNUITY", u_annuity) * 2) / 2
        self.cols["REGION_POPULATION_RELATIVE"] = np.round(
            self._continuous("REGION_POPULATION_RELATIVE"), 6
        )

    def _scores(self) -> None:
        """EXT_SOURCE_1..3: external credit scores, correlated with age and each other."""
        for column, age_loading in (
            ("EXT_SOURCE_1", 0.55),
            ("EXT_SOURCE_2", 0.12),
            ("EXT_SOURCE_3", 0.2),
        ):
            z = self._mixed((0.55, self.z_quality), (age_loading, self.z_age))
            self.cols[column] = self._continuous(column, self._uniform_from(z))

    def _building(self) -> None:
        """The 47 building columns: AVG/MODE/MEDI of one measure share their draw."""
        z_size = self.rng.standard_normal(self.n)
        families: dict[str, list[str]] = {}
        for column in self.ref.columns:
            if column.endswith(_BUILDING_SUFFIXES) and self.ref.dtype(column) == "float64":
                families.setdefault(column.rsplit("_", 1)[0], []).append(column)
        for columns in families.values():
            u = self._uniform_from(self._mixed((0.7, z_size)))
            for column in columns:
                self.cols[column] = np.round(self._continuous(column, u), 4)
        for column in _BUILDING_TEXT:
            self.cols[column] = self._levels(column).astype(object)

    def _remaining(self) -> None:
        """Flags, counts, ratings and text columns with no rule of their own."""
        rating = self._three_valued("REGION_RATING_CLIENT")
        keep = self.rng.random(self.n) < 0.93
        self.cols["REGION_RATING_CLIENT"] = rating
        self.cols["REGION_RATING_CLIENT_W_CITY"] = np.where(
            keep, rating, self._three_valued("REGION_RATING_CLIENT_W_CITY")
        )
        obs = self._counts("OBS_30_CNT_SOCIAL_CIRCLE")
        self.cols["OBS_30_CNT_SOCIAL_CIRCLE"] = obs
        self.cols["OBS_60_CNT_SOCIAL_CIRCLE"] = np.where(
            self.rng.random(self.n) < 0.98, obs, self._counts("OBS_60_CNT_SOCIAL_CIRCLE")
        )
        # Defaults among the observed social circle: a thinning keeps DEF ≤ OBS.
        for days in ("30", "60"):
            observed = self.cols[f"OBS_{days}_CNT_SOCIAL_CIRCLE"]
            share = (
                self._stats(f"DEF_{days}_CNT_SOCIAL_CIRCLE").mean
                / self._stats(f"OBS_{days}_CNT_SOCIAL_CIRCLE").mean
            )
            self.cols[f"DEF_{days}_CNT_SOCIAL_CIRCLE"] = self.rng.binomial(
                observed.astype(np.int64), share
            ).astype(float)
        for column in self.ref.columns:
            if column in self.cols or column == "TARGET":
                continue
            s = self._stats(column)
            if s.dtype == "object":
                self.cols[column] = self._levels(column).astype(object)
            elif s.min == 0 and s.max == 1 and s.dtype == "int64":
                self.cols[column] = self._flag(column)
            elif s.min == 0 and s.p50 <= 1 and column.startswith(_WHOLE_NUMBER_FLOATS):
                self.cols[column] = self._counts(column)
            else:
                self.cols[column] = np.round(self._continuous(column))

    def _three_valued(self, column: str) -> np.ndarray:
        """Values 1/2/3 with the real mean and standard deviation."""
        s = self._stats(column)
        shift, spread = s.mean - 2, s.std**2 + (s.mean - 2) ** 2
        p_high, p_low = (spread + shift) / 2, (spread - shift) / 2
        u = self.rng.random(self.n)
        return np.where(u < p_low, 1, np.where(u < p_low + p_high, 3, 2)).astype(np.int64)

    def _apply_missing_groups(self) -> None:
        """Blank values at each column's real missing rate, in the real groups: columns
        that share a missing count share their missing rows, and the building columns
        nest (a row missing a rarer measure misses the commoner ones too)."""
        u_building = self.rng.random(self.n)
        group_u: dict[int, np.ndarray] = {}
        for column in self.ref.columns:
            s = self._stats(column)
            if s.missing == 0 or column in ("OWN_CAR_AGE", "OCCUPATION_TYPE"):
                continue
            if column.endswith(_BUILDING_SUFFIXES) or column in _BUILDING_TEXT:
                u = u_building
            else:
                u = group_u.setdefault(s.missing, self.rng.random(self.n))
            mask = u < s.missing_rate
            values = self.cols[column]
            if values.dtype == object:
                values[mask] = None
            else:
                self.cols[column] = np.where(mask, np.nan, values.astype(float))
        # The real file leaves AMT_GOODS_PRICE empty on revolving loans only.
        revolving = self.cols["NAME_CONTRACT_TYPE"] == "Revolving loans"
        goods = self.cols["AMT_GOODS_PRICE"]
        self.cols["AMT_GOODS_PRICE"] = np.where(
            np.isnan(goods) & ~revolving, self.cols["AMT_CREDIT"], goods
        )

    def _target(self) -> None:
        """TARGET from a logistic model in the real directions, at the real default rate."""
        c = self.cols

        def standardised(values: np.ndarray, fill: float = 0.0) -> np.ndarray:
            mean, std = np.nanmean(values), np.nanstd(values)
            return np.asarray(np.nan_to_num((values - mean) / std, nan=fill))

        youth = standardised(c["DAYS_BIRTH"])  # DAYS_BIRTH is negative: higher = younger
        logit = (
            0.13 * youth
            - 0.25 * standardised(c["EXT_SOURCE_1"])
            - 0.42 * standardised(c["EXT_SOURCE_2"])
            - 0.48 * standardised(c["EXT_SOURCE_3"])
            + 0.42 * (c["CODE_GENDER"] == "M")
            + 0.15 * standardised(np.where(self.pensioner, np.nan, c["DAYS_EMPLOYED"]))
            + 0.18 * standardised(np.log(c["AMT_CREDIT"]))
            - 0.12 * standardised(np.log(np.nan_to_num(c["AMT_GOODS_PRICE"], nan=1.0) + 1.0))
            - 0.05 * standardised(np.log(c["AMT_INCOME_TOTAL"]))
            + 0.45 * (c["REGION_RATING_CLIENT_W_CITY"] - 2)
            + 0.35 * np.isnan(c["AMT_REQ_CREDIT_BUREAU_YEAR"])
            - 0.80 * np.isnan(c["OBS_30_CNT_SOCIAL_CIRCLE"])
            + 0.12 * (c["NAME_EDUCATION_TYPE"] == "Secondary / secondary special")
        )
        intercept = _calibrate_intercept(logit, OFFICIAL_DEFAULT_RATE)
        odds = np.exp(logit + intercept)
        # Exactly the real share of defaults, drawn without replacement with weights in
        # proportion to the odds (Efraimidis-Spirakis keys): a conditional Bernoulli draw.
        defaults = round(OFFICIAL_DEFAULT_RATE * self.n)
        keys = np.log(self.rng.random(self.n)) / odds
        target = np.zeros(self.n, dtype=np.int64)
        if defaults:
            target[np.argpartition(keys, self.n - defaults)[self.n - defaults :]] = 1
        self.cols["TARGET"] = target

    def _assemble(self) -> pd.DataFrame:
        data: dict[str, pd.Series] = {}
        for column in self.ref.columns:
            values = self.cols[column]
            match self.ref.dtype(column):
                case "int64":
                    data[column] = pd.Series(np.asarray(values).astype(np.int64))
                case "float64":
                    data[column] = pd.Series(np.asarray(values, dtype=float))
                case "object":
                    data[column] = pd.Series(values, dtype=object)
        return pd.DataFrame(data, columns=list(self.ref.columns))


def _calibrate_intercept(logit: np.ndarray, rate: float) -> float:
    """The intercept that makes the mean predicted probability equal `rate`."""
    low, high = -20.0, 20.0
    for _ in range(60):
        mid = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(logit + mid)))) < rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2
