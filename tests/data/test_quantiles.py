"""The quantile curve goes through its knots, is monotone, and fits a mean and a std."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agi_credit.data.quantiles import Knots, QuantileCurve, fitted_curve, solve_power

SHARE = 1 / 307_511  # one row of a file the size of the real one
DENSE = (np.arange(2_000_000) + 0.5) / 2_000_000
"""Probabilities fine enough for the curve's moments to show at 1 %."""

HEAVY: Knots = (25_650.0, 112_500.0, 147_150.0, 202_500.0, 117_000_000.0)  # like incomes
LIGHT: Knots = (0.0, 0.39, 0.57, 0.66, 0.85)  # like a score with a long lower tail


def _knot_values(curve: QuantileCurve) -> list[float]:
    return [float(v) for v in curve.inverse(np.array([0.0, 0.25, 0.5, 0.75, 1.0]))]


@pytest.mark.parametrize("knots", [HEAVY, LIGHT])
def test_a_fitted_curve_goes_through_its_knots_and_never_falls(knots: Knots) -> None:
    mean = 170_000.0 if knots is HEAVY else 0.514
    std = 240_000.0 if knots is HEAVY else 0.19
    curve = QuantileCurve.fit(knots, mean=mean, std=std, top_share=SHARE)
    assert _knot_values(curve) == pytest.approx(knots, rel=1e-9)
    values = curve.inverse(DENSE)
    assert (np.diff(values) >= 0).all()
    assert values.min() >= knots[0] and values.max() <= knots[4]


def test_a_heavy_right_tail_gets_the_mean_and_the_std() -> None:
    curve = QuantileCurve.fit(HEAVY, mean=170_000.0, std=240_000.0, top_share=SHARE)
    assert curve.log_upper and curve.upper_power >= 1 and curve.lower_power == 1
    assert HEAVY[3] < curve.top < HEAVY[4]
    values = curve.inverse(DENSE)
    assert values.mean() == pytest.approx(170_000.0, rel=0.01)
    assert values.std() == pytest.approx(240_000.0, rel=0.01)


def test_a_mean_above_the_straight_curve_compresses_the_lower_tail() -> None:
    curve = QuantileCurve.fit(LIGHT, mean=0.514, std=0.19, top_share=SHARE)
    assert curve.lower_power > 1 and curve.upper_power == 1 and curve.top == LIGHT[4]
    assert curve.inverse(DENSE).mean() == pytest.approx(0.514, rel=0.01)


def test_no_mean_or_a_single_value_gives_straight_tails() -> None:
    for knots, mean in ((LIGHT, math.nan), ((1.0, 1.0, 1.0, 1.0, 1.0), 1.0)):
        curve = QuantileCurve.fit(knots, mean=mean, std=0.0, top_share=SHARE)
        assert (curve.lower_power, curve.upper_power, curve.top) == (1.0, 1.0, knots[4])


def test_the_last_share_rises_from_top_to_the_maximum() -> None:
    curve = QuantileCurve(knots=(0.0, 1.0, 2.0, 3.0, 100.0), top_share=0.01, top=10.0)
    assert float(curve.inverse(np.array([0.99]))[0]) == pytest.approx(10.0)
    assert float(curve.inverse(np.array([0.995]))[0]) == pytest.approx(55.0)


def test_a_curve_is_fitted_once_per_set_of_figures() -> None:
    first = fitted_curve(LIGHT, mean=0.514, std=0.19, top_share=SHARE)
    assert fitted_curve(LIGHT, mean=0.514, std=0.19, top_share=SHARE) is first
    assert fitted_curve(LIGHT, mean=0.52, std=0.19, top_share=SHARE) is not first


@pytest.mark.parametrize("increasing", [False, True])
def test_solve_power_finds_the_power_of_a_monotone_mean(increasing: bool) -> None:
    def mean_of(k: float) -> float:
        return k if increasing else 1 / k

    target = 7.0 if increasing else 1 / 7
    assert solve_power(mean_of, target, increasing=increasing) == pytest.approx(7.0, rel=1e-9)
    # Out of reach: the bisection stops at its bounds, 1 and 20,000.
    assert solve_power(mean_of, 1e9 if increasing else 0.0, increasing=increasing) == (
        pytest.approx(20_000.0, rel=1e-9)
    )
