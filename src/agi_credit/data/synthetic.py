"""A synthetic application_train.csv with the real file's schema and statistics.

Every column follows its published marginal (`reference`): text levels with their real
frequencies, binary flags with their real rates, counts as negative binomials with the
real mean and variance, and continuous columns through a piecewise inverse CDF that goes
through the real min / quartiles / max with tails shaped to match the real mean. Rows are
tied together by a few latent factors (age, wealth, credit quality, building size) and by
the rules the real data is known to follow: pensioners carry DAYS_EMPLOYED = 365243 and
ORGANIZATION_TYPE XNA, AMT_GOODS_PRICE ≤ AMT_CREDIT mostly, CNT_FAM_MEMBERS counts the
children, missing values come in the real shared-missingness groups. TARGET is drawn from a
logistic model in the real directions and calibrated to the real default rate.
"""

from __future__ import annotations

import csv
import functools
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from agi_credit.data.reference import OFFICIAL_DEFAULT_RATE, ColumnStats, load_reference

__all__ = ["generate_frame", "write_csv"]

PENSIONER_SENTINEL = 365_243
_PENSIONER_RATE = 55_374 / 307_511
_BUILDING_SUFFIXES = ("_AVG", "_MODE", "_MEDI")
_BUILDING_TEXT = (
    "FONDKAPREMONT_MODE",
    "HOUSETYPE_MODE",
    "WALLSMATERIAL_MODE",
    "EMERGENCYSTATE_MODE",
)
_WHOLE_NUMBER_FLOATS = ("DAYS_", "OWN_CAR_AGE", "CNT_", "OBS_", "DEF_", "AMT_REQ_")
_CSV_CHUNK_ROWS = 25_000


def generate_frame(rows: int, *, seed: int) -> pd.DataFrame:
    """`rows` synthetic applications, columns in the real order with the real dtypes."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    return _Generator(rows, np.random.default_rng(seed)).frame()


def write_csv(
    frame: pd.DataFrame, path: Path, *, on_progress: Callable[[int], None] | None = None
) -> None:
    """Write `frame` as the real file is written: ints plain, floats with a decimal point,
    missing values empty, text quoted only where needed. Written to a temporary file first,
    so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
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
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


class _Generator:
    """Draws one synthetic data set; one method per group of related columns."""

    def __init__(self, rows: int, rng: np.random.Generator) -> None:
        self.n = rows
        self.rng = rng
        self.ref = load_reference()
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
        return _curve(s).inverse(u)

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
        age_years = -self.cols["DAYS_BIRTH"] / 365.25
        score = age_years + self.rng.logistic(0, 3, self.n)
        pensioner = score >= np.quantile(score, 1 - _PENSIONER_RATE)
        self.pensioner = pensioner

        income_type = self._levels("NAME_INCOME_TYPE", exclude=("Pensioner",))
        pension_type = np.where(
            self.rng.random(self.n) < 55_362 / 55_374, "Pensioner", "Unemployed"
        )
        self.cols["NAME_INCOME_TYPE"] = np.where(pensioner, pension_type, income_type)
        org = self._levels("ORGANIZATION_TYPE", exclude=("XNA",))
        self.cols["ORGANIZATION_TYPE"] = np.where(pensioner, "XNA", org)

        # Working applicants: real quantiles of the non-sentinel part (facts.md, in years).
        worked = np.round(
            _QuantileCurve(
                knots=(-17912.0, -8.7 * 365.25, -4.5 * 365.25, -2.1 * 365.25, 0.0),
                lower_power=0.35,
            ).inverse(self.rng.random(self.n))
        )
        worked = np.maximum(worked, self.cols["DAYS_BIRTH"] + 18 * 365)  # working since 18
        self.cols["DAYS_EMPLOYED"] = np.where(pensioner, PENSIONER_SENTINEL, worked)
        self.cols["FLAG_EMP_PHONE"] = (~pensioner).astype(np.int64)
        occupation = self._levels("OCCUPATION_TYPE").astype(object)
        no_occupation = self.rng.random(self.n) < (96_391 - 55_374) / (307_511 - 55_374)
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


class _QuantileCurve:
    """A monotone inverse CDF through (0, min), (¼, p25), (½, p50), (¾, p75), (1, max).

    The middle quarters are linear; each outer quarter is x = edge + span · t^k (the upper
    one in log space for positive heavy tails). A heavy right tail rises to `top` just before
    the last 1/307,511 of the distribution, the real file's single largest row, which
    reaches the maximum. The power k and `top` are chosen so that the curve has the real
    mean and standard deviation; a light-tailed column compresses its lower tail instead.
    """

    _GRID = (np.arange(4000) + 0.5) / 4000
    _TOP_SHARE = 1 / 307_511

    def __init__(
        self,
        *,
        knots: tuple[float, float, float, float, float],
        lower_power: float = 1.0,
        upper_power: float = 1.0,
        log_upper: bool = False,
        top: float | None = None,
    ) -> None:
        self.knots = knots
        self.lower_power = lower_power
        self.upper_power = upper_power
        self.log_upper = log_upper
        self.top = knots[4] if top is None else top

    @classmethod
    def fit(cls, s: ColumnStats) -> _QuantileCurve:
        knots = (s.min, s.p25, s.p50, s.p75, s.max)
        curve = cls(knots=knots, log_upper=s.p75 > 0 and s.max / s.p75 > 20)
        if math.isnan(s.mean) or s.max == s.min:
            return curve
        # Tails are only ever compressed towards the quartiles (power ≥ 1).
        if curve._moments(1.0, 1.0, s.max)[0] > s.mean:
            curve.top = curve._fit_top(s)
            curve.upper_power = _solve_power(lambda k: curve._moments(1.0, k, curve.top)[0], s.mean)
        else:
            curve.lower_power = _solve_power(
                lambda k: curve._moments(k, 1.0, s.max)[0], s.mean, increasing=True
            )
        return curve

    def _fit_top(self, s: ColumnStats) -> float:
        """The `top` whose curve (with the power that matches the mean) has the real
        standard deviation; the mean must stay reachable with power 1."""

        def between(low: float, high: float) -> float:
            return math.sqrt(low * high) if self.log_upper else (low + high) / 2

        low, high = s.p75, s.max
        for _ in range(50):  # the smallest top that can still reach the mean
            mid = between(low, high)
            if self._moments(1.0, 1.0, mid)[0] < s.mean:
                low = mid
            else:
                high = mid
        low = high
        high = s.max
        for _ in range(40):
            mid = between(low, high)
            power = _solve_power(functools.partial(self._mean_at, top=mid), s.mean)
            if self._moments(1.0, power, mid)[1] < s.std:
                low = mid
            else:
                high = mid
        return between(low, high)

    def _mean_at(self, upper_power: float, *, top: float) -> float:
        return self._moments(1.0, upper_power, top)[0]

    def _segment(
        self, t: np.ndarray, low: float, high: float, power: float, log: bool
    ) -> np.ndarray:
        if log:
            return np.asarray(low * np.power(high / low, np.power(t, power)))
        return np.asarray(low + (high - low) * np.power(t, power))

    def _moments(self, lower_power: float, upper_power: float, top: float) -> tuple[float, float]:
        """Mean and standard deviation of the curve."""
        mn, q1, q2, q3, mx = self.knots
        share = self._TOP_SHARE
        segments = [
            (0.25, self._segment(self._GRID, q1, mn, lower_power, False)),
            (0.25, q1 + (q2 - q1) * self._GRID),
            (0.25, q2 + (q3 - q2) * self._GRID),
            (0.25 - share, self._segment(self._GRID, q3, top, upper_power, self.log_upper)),
        ]
        mean = sum(w * x.mean() for w, x in segments) + share * (top + mx) / 2
        square = (
            sum(w * (x * x).mean() for w, x in segments)
            + share * (top * top + top * mx + mx * mx) / 3
        )
        return float(mean), math.sqrt(max(float(square - mean * mean), 0.0))

    def inverse(self, u: np.ndarray) -> np.ndarray:
        mn, q1, q2, q3, mx = self.knots
        x = np.empty_like(u, dtype=float)
        seg = np.minimum((u * 4).astype(int), 3)
        t = u * 4 - seg
        lower, mid1, mid2 = seg == 0, seg == 1, seg == 2
        x[lower] = self._segment(1 - t[lower], q1, mn, self.lower_power, False)
        x[mid1] = q1 + (q2 - q1) * t[mid1]
        x[mid2] = q2 + (q3 - q2) * t[mid2]
        peak = u >= 1 - self._TOP_SHARE
        upper = (seg == 3) & ~peak
        t_upper = (u[upper] - 0.75) / (0.25 - self._TOP_SHARE)
        x[upper] = self._segment(t_upper, q3, self.top, self.upper_power, self.log_upper)
        x[peak] = self.top + (mx - self.top) * (u[peak] - (1 - self._TOP_SHARE)) / self._TOP_SHARE
        return x


@functools.cache
def _curve(stats: ColumnStats) -> _QuantileCurve:
    """Fitted once per column per process: fitting costs more than drawing."""
    return _QuantileCurve.fit(stats)


def _solve_power(
    mean_of: Callable[[float], float], target: float, *, increasing: bool = False
) -> float:
    """Bisection in log space for the power (≥ 1) whose curve mean is closest to `target`.
    The mean falls as the power grows (rises, for the lower tail)."""
    low, high = 0.0, math.log(20_000.0)
    for _ in range(50):
        mid = (low + high) / 2
        too_high = mean_of(math.exp(mid)) > target
        if too_high != increasing:
            low = mid
        else:
            high = mid
    return math.exp((low + high) / 2)
