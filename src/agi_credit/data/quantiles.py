"""A monotone quantile function through five known quantiles, fitted to a mean and a std.

`QuantileCurve` maps u in [0, 1] to x through (0, min), (¼, p25), (½, p50), (¾, p75) and
(1, max): a piecewise inverse CDF, so `curve.inverse(uniforms)` draws from a distribution with
exactly those quantiles. The two middle quarters are straight lines. Each outer quarter is a
power curve x = edge + span · t^k running out from the nearest quartile; with k > 1 it stays
near the quartile for longer, which pulls the tail in. When max / p75 > 20 the upper quarter
is geometric instead (linear in log x), for heavy positive tails such as incomes.

The last `top_share` of the distribution (one row in n, for a sample of n rows) is the
sample's single largest value: the upper quarter climbs only to `top` and that last sliver
rises straight from `top` to the maximum. A heavy tail thus keeps its true maximum without
putting a visible share of draws near it.

`QuantileCurve.fit` chooses the free parts so that the curve has a given mean and standard
deviation. When the curve with straight outer quarters has a mean above the target (a heavy
right tail), `top` and the upper power are chosen together: the power that gives the mean,
and the `top` whose curve then has the standard deviation. Otherwise the lower power is
raised until the mean is reached, and the standard deviation is left as it comes. Powers
are never below 1: tails are only compressed towards the quartiles. Moments are computed
on a fixed grid of 4000 midpoints per quarter, so a fit is deterministic.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

__all__ = ["Knots", "QuantileCurve", "fitted_curve", "solve_power"]

Knots = tuple[float, float, float, float, float]
"""min, p25, p50, p75, max."""

_HEAVY_TAIL_RATIO = 20
"""max / p75 above which the upper quarter is drawn in log space."""
_MAX_POWER = 20_000.0


class QuantileCurve:
    """A monotone inverse CDF through `knots`, with tails shaped by powers (module doc)."""

    _GRID = (np.arange(4000) + 0.5) / 4000

    def __init__(
        self,
        *,
        knots: Knots,
        top_share: float,
        lower_power: float = 1.0,
        upper_power: float = 1.0,
        log_upper: bool = False,
        top: float | None = None,
    ) -> None:
        self.knots = knots
        self.top_share = top_share
        self.lower_power = lower_power
        self.upper_power = upper_power
        self.log_upper = log_upper
        self.top = knots[4] if top is None else top

    @classmethod
    def fit(cls, knots: Knots, *, mean: float, std: float, top_share: float) -> QuantileCurve:
        """The curve through `knots` with this `mean` and (for a heavy right tail) `std`.
        A NaN mean, or a single value (min = max), gives straight outer quarters."""
        _, _, _, p75, mx = knots
        log_upper = p75 > 0 and mx / p75 > _HEAVY_TAIL_RATIO
        probe = cls(knots=knots, top_share=top_share, log_upper=log_upper)
        if math.isnan(mean) or mx == knots[0]:
            return probe
        if probe._moments(1.0, 1.0, mx)[0] > mean:
            top = probe._fit_top(mean, std)
            upper_power = solve_power(lambda k: probe._moments(1.0, k, top)[0], mean)
            return cls(
                knots=knots,
                top_share=top_share,
                upper_power=upper_power,
                log_upper=log_upper,
                top=top,
            )
        lower_power = solve_power(lambda k: probe._moments(k, 1.0, mx)[0], mean, increasing=True)
        return cls(knots=knots, top_share=top_share, lower_power=lower_power, log_upper=log_upper)

    def _fit_top(self, mean: float, std: float) -> float:
        """The `top` whose curve (with the power that matches the mean) has standard
        deviation `std`; the mean must stay reachable with power 1."""

        def between(low: float, high: float) -> float:
            return math.sqrt(low * high) if self.log_upper else (low + high) / 2

        low, high = self.knots[3], self.knots[4]
        for _ in range(50):  # the smallest top that can still reach the mean
            mid = between(low, high)
            if self._moments(1.0, 1.0, mid)[0] < mean:
                low = mid
            else:
                high = mid
        low = high
        high = self.knots[4]
        for _ in range(40):
            mid = between(low, high)
            power = solve_power(functools.partial(self._mean_at, top=mid), mean)
            if self._moments(1.0, power, mid)[1] < std:
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
        """Mean and standard deviation of the curve with these powers and `top`."""
        mn, q1, q2, q3, mx = self.knots
        share = self.top_share
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
        """The values at probabilities `u` (uniforms in [0, 1) give draws)."""
        mn, q1, q2, q3, mx = self.knots
        share = self.top_share
        x = np.empty_like(u, dtype=float)
        seg = np.minimum((u * 4).astype(int), 3)
        t = u * 4 - seg
        lower, mid1, mid2 = seg == 0, seg == 1, seg == 2
        x[lower] = self._segment(1 - t[lower], q1, mn, self.lower_power, False)
        x[mid1] = q1 + (q2 - q1) * t[mid1]
        x[mid2] = q2 + (q3 - q2) * t[mid2]
        peak = u >= 1 - share
        upper = (seg == 3) & ~peak
        t_upper = (u[upper] - 0.75) / (0.25 - share)
        x[upper] = self._segment(t_upper, q3, self.top, self.upper_power, self.log_upper)
        x[peak] = self.top + (mx - self.top) * (u[peak] - (1 - share)) / share
        return x


@functools.cache
def fitted_curve(knots: Knots, *, mean: float, std: float, top_share: float) -> QuantileCurve:
    """`QuantileCurve.fit`, once per set of figures per process: fitting costs more than
    drawing. The curve returned is shared: do not change it."""
    return QuantileCurve.fit(knots, mean=mean, std=std, top_share=top_share)


def solve_power(
    mean_of: Callable[[float], float], target: float, *, increasing: bool = False
) -> float:
    """Bisection in log space for the power in [1, 20,000] whose curve mean is closest to
    `target`. The mean falls as the power grows (rises, with `increasing`: the lower tail)."""
    low, high = 0.0, math.log(_MAX_POWER)
    for _ in range(50):
        mid = (low + high) / 2
        too_high = mean_of(math.exp(mid)) > target
        if too_high != increasing:
            low = mid
        else:
            high = mid
    return math.exp((low + high) / 2)
