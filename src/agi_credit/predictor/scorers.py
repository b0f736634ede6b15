"""Scorers: what turns a [rows, features] matrix into P(default).

Two handlers, chosen at load time:
- `CompiledGlm`: a recipe (median imputation, normalisation) + binomial/logit glm compiled
  into numpy. It is used only after it matched R's own predictions on a parity sample.
- `RScorer`: any R model with a `predict` method, scored in R (on the R thread).

A compiled score is a function of the row and the model alone, bit for bit: not of the
other rows in the request, their number, or the processor. So it is made of IEEE-754
operations (+, -, *, /, rounding, scaling by powers of two) applied elementwise in a fixed
order, which give the same bits everywhere. Two things that do not: a BLAS product
(`X @ beta` sums in an order that depends on the row count and the CPU) and numpy's `exp`
(its kernel is chosen by CPU: AVX-512's and libm's disagree in the last bit on ~5 % of
inputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

from agi_credit.model_metadata import Engine

if TYPE_CHECKING:
    from agi_credit.rruntime import LinearForm, RModel

# R's binomial()$linkinv (logit_linkinv in R's family.c) clamps the linear predictor.
_THRESH = 30.0
_EPS = float(np.finfo(np.float64).eps)

# exp's range reduction and polynomial: fdlibm's e_exp.c (error < 1 ulp). _LN2_HI has 32
# significant bits, so k * _LN2_HI is exact for the |k| <= 44 that |x| <= 30 needs.
_INV_LN2 = 1.44269504088896338700e00
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_P1 = 1.66666666666666019037e-01
_P2 = -2.77777777770155933842e-03
_P3 = 6.61375632143793436117e-05
_P4 = -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08

CHUNK_ROWS = 8192
"""Rows scored at a time by numpy: one chunk's temporaries stay in the processor's cache."""
FLOAT_ROWS = 16
"""Batches up to this size are scored a row at a time in Python floats: faster than
numpy's overhead per call, and the same bits."""


class Scorer(Protocol):
    @property
    def engine(self) -> Engine: ...

    @property
    def features(self) -> tuple[str, ...]: ...

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """P(default) for each row of `matrix` ([rows, features], float64, feature order)."""
        ...


class NotCompilable(Exception):
    """The model's shape is not one the compiler understands; the reason says why."""


Number = TypeVar("Number", float, np.ndarray)


def _reduced_exp(x: Number, k: Number) -> Number:
    """e**(x - k ln 2) for k = round(x / ln 2): fdlibm's reduction and rational
    approximation, written once for Python floats and numpy arrays (the same IEEE-754
    operations in the same order, so the same bits)."""
    hi = x - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    return 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)


def exp_ieee(x: np.ndarray) -> np.ndarray:
    """e**x for |x| <= 30 (NaN stays NaN), within 1 ulp, from IEEE-754 operations only: the
    same bits on every machine (numpy's own `exp` is not, see the module's docstring)."""
    k = np.rint(x * _INV_LN2)
    # |k| <= 44 here; fmax turns only a NaN k (of a NaN x, whose result stays NaN) into a
    # number, which the cast to integers needs.
    return np.asarray(np.ldexp(_reduced_exp(x, k), np.fmax(k, -64.0).astype(np.int32)))


def logit_linkinv(eta: np.ndarray) -> np.ndarray:
    """R's inverse logit, with its clamping at ±30, so that extremes match R exactly; NaN
    stays NaN."""
    inside = np.minimum(np.maximum(eta, -_THRESH), _THRESH)  # np.clip costs 5 µs a call
    odds = np.where(eta < -_THRESH, _EPS, np.where(eta > _THRESH, 1 / _EPS, exp_ieee(inside)))
    return np.asarray(odds / (1 + odds))


def _logit_linkinv_float(eta: float) -> float:
    """`logit_linkinv` of one value, in Python floats: the same bits, without numpy's cost
    per call (a single row would pay it some fifty times)."""
    if math.isnan(eta):
        return eta  # the same NaN as numpy's arithmetic passes on
    if eta < -_THRESH:
        odds = _EPS
    elif eta > _THRESH:
        odds = 1 / _EPS
    else:
        k = float(round(eta * _INV_LN2))  # half to even, as np.rint
        odds = math.ldexp(_reduced_exp(eta, k), int(k))
    return odds / (1 + odds)


@dataclass(frozen=True, slots=True)
class CompiledGlm:
    """`predict(glm, bake(recipe, x), type = "response")` in numpy, batch-invariant: the
    intercept plus each feature's term, added in feature order, then the inverse link."""

    features: tuple[str, ...]
    steps: tuple[tuple[str, np.ndarray, np.ndarray], ...]
    """("impute", fill values (NaN: none), unused) or ("normalize", means, sds)."""
    intercept: float
    beta: np.ndarray
    engine: Engine = "compiled"
    _row_steps: tuple[tuple[tuple[str, float, float], ...], ...] = field(
        init=False, repr=False, compare=False
    )
    _row_beta: tuple[float, ...] = field(init=False, repr=False, compare=False)

    @classmethod
    def from_linear_form(cls, form: LinearForm, features: tuple[str, ...]) -> CompiledGlm:
        if form.family != "binomial" or form.link != "logit":
            raise NotCompilable(f"glm family {form.family}/{form.link}, not binomial/logit")
        if form.has_offset:
            raise NotCompilable("the glm has an offset")
        if set(form.terms) != set(features) or len(form.terms) != len(features):
            raise NotCompilable(f"glm terms {list(form.terms)} are not the features")
        if set(form.coefficients) != {"(Intercept)", *form.terms}:
            raise NotCompilable("coefficients are not an intercept and one per feature")
        if any(np.isnan(v) for v in form.coefficients.values()):
            raise NotCompilable("the glm has NA coefficients (rank-deficient fit)")
        steps = []
        for step in form.steps:
            if step.skip or not step.trained:
                raise NotCompilable(f"recipe step {step.kind} is skipped or untrained")
            if step.kind == "impute_median":
                fill = _by_feature(step.values.get("medians", {}), features, np.nan)
                steps.append(("impute", fill, fill))
            elif step.kind == "normalize":
                means = _by_feature(step.values.get("means", {}), features, 0.0)
                sds = _by_feature(step.values.get("sds", {}), features, 1.0)
                steps.append(("normalize", means, sds))
            else:
                raise NotCompilable(f"recipe step {step.kind} is not compiled")
        beta = np.array([form.coefficients[f] for f in features], dtype=np.float64)
        return cls(
            features=features,
            steps=tuple(steps),
            intercept=float(form.coefficients["(Intercept)"]),
            beta=beta,
        )

    @property
    def imputed(self) -> frozenset[str]:
        """Features a missing value is filled in for."""
        filled = np.zeros(len(self.features), dtype=bool)
        for kind, values, _ in self.steps:
            if kind == "impute":
                filled |= ~np.isnan(values)
        return frozenset(f for f, ok in zip(self.features, filled, strict=True) if ok)

    def term(self, column: np.ndarray, j: int) -> np.ndarray:
        """Feature j's term in the log-odds, beta_j * baked_j (zero at the training mean),
        for a column of its values: the recipe's steps in their order, then the
        coefficient. Elementwise, so a term is a function of its value alone."""
        x = column
        for kind, first, second in self._row_steps[j]:
            if kind == "impute":
                x = np.where(np.isnan(x), first, x)
            else:
                x = (x - first) / second
        return np.asarray(x * self._row_beta[j])

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Each feature's term in the log-odds, [rows, features]."""
        return np.column_stack([self.term(matrix[:, j], j) for j in range(len(self.features))])

    def log_odds(self, matrix: np.ndarray) -> np.ndarray:
        """The intercept plus each term, added in feature order (never a BLAS product)."""
        eta = np.full(len(matrix), self.intercept)
        for j in range(len(self.features)):
            eta += self.term(matrix[:, j], j)
        return eta

    def score(self, matrix: np.ndarray) -> np.ndarray:
        if len(matrix) <= FLOAT_ROWS:
            return np.array([self._score_row(row) for row in matrix.tolist()], dtype=np.float64)
        prob = np.empty(len(matrix))
        for start in range(0, len(matrix), CHUNK_ROWS):
            chunk = matrix[start : start + CHUNK_ROWS]
            prob[start : start + CHUNK_ROWS] = logit_linkinv(self.log_odds(chunk))
        return prob

    def _score_row(self, row: list[float]) -> float:
        """`score` of one row in Python floats: the operations of `term`, `log_odds` and
        `logit_linkinv` in the same order, so the same bits."""
        eta = self.intercept
        for x, steps, beta in zip(row, self._row_steps, self._row_beta, strict=True):
            for kind, first, second in steps:
                if kind == "impute":
                    if math.isnan(x):
                        x = first
                else:
                    x = (x - first) / second
            eta += x * beta
        return _logit_linkinv_float(eta)

    def __post_init__(self) -> None:
        # For `_score_row`: per feature, as Python floats, without the impute steps that
        # have no fill value for it (they leave a NaN as it is).
        row_steps = tuple(
            tuple(
                (kind, float(first[j]), float(second[j]))
                for kind, first, second in self.steps
                if kind != "impute" or not np.isnan(first[j])
            )
            for j in range(len(self.features))
        )
        object.__setattr__(self, "_row_steps", row_steps)
        object.__setattr__(self, "_row_beta", tuple(float(b) for b in self.beta))


def _by_feature(values: dict[str, float], features: tuple[str, ...], default: float) -> np.ndarray:
    return np.array([values.get(f, default) for f in features], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class RScorer:
    """Scores in R: call only on the R thread."""

    model: RModel
    features: tuple[str, ...]
    engine: Engine = "r"

    def score(self, matrix: np.ndarray) -> np.ndarray:
        return self.model.predict_proba({f: matrix[:, j] for j, f in enumerate(self.features)})


def parity_sample(compiled: CompiledGlm, *, rows: int, seed: int = 0) -> np.ndarray:
    """Rows to compare the compiled scorer with R on: typical values, heavy tails, exact
    zeros, extremes far outside the training range, and missing values where imputed."""
    rng = np.random.default_rng(seed)
    centre = np.zeros(len(compiled.features))
    spread = np.ones(len(compiled.features))
    for kind, first, second in compiled.steps:
        if kind == "normalize":
            centre, spread = first, second
    sample = centre + spread * rng.standard_t(df=3, size=(rows, len(compiled.features)))
    extremes = np.array([0.0, 1e9, -1e9, 1e15, -1e15, 1e-300])
    for i, value in enumerate(extremes[:rows]):
        sample[i] = value
    for j, feature in enumerate(compiled.features):
        if feature in compiled.imputed:
            sample[rng.random(rows) < 0.1, j] = np.nan
    return sample
