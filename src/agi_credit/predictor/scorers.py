"""Scorers: what turns a [rows, features] matrix into P(default).

Two handlers, chosen at load time:
- `CompiledGlm`: a recipe (median imputation, normalisation) + binomial/logit glm compiled
  into numpy. It is used only after it matched R's own predictions on a parity sample.
- `RScorer`: any R model with a `predict` method, scored in R (on the R thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from agi_credit.model_metadata import Engine

if TYPE_CHECKING:
    from agi_credit.rruntime import LinearForm, RModel

# R's binomial()$linkinv (logit_linkinv in R's family.c) clamps the linear predictor.
_THRESH = 30.0
_EPS = float(np.finfo(np.float64).eps)


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


def logit_linkinv(eta: np.ndarray) -> np.ndarray:
    """R's inverse logit, with its clamping at ±30, so that extremes match R exactly."""
    odds = np.where(
        eta < -_THRESH,
        _EPS,
        np.where(eta > _THRESH, 1 / _EPS, np.exp(np.clip(eta, -_THRESH, _THRESH))),
    )
    return np.asarray(odds / (1 + odds))


@dataclass(frozen=True, slots=True)
class CompiledGlm:
    """`predict(glm, bake(recipe, x), type = "response")` in numpy."""

    features: tuple[str, ...]
    steps: tuple[tuple[str, np.ndarray, np.ndarray], ...]
    """("impute", fill values (NaN: none), unused) or ("normalize", means, sds)."""
    intercept: float
    beta: np.ndarray
    engine: Engine = "compiled"

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
            intercept=form.coefficients["(Intercept)"],
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

    def baked(self, matrix: np.ndarray) -> np.ndarray:
        """The recipe applied: what the glm sees."""
        x = matrix
        for kind, first, second in self.steps:
            if kind == "impute":
                x = np.where(np.isnan(x), first, x)
            else:
                x = (x - first) / second
        return x

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Each feature's term in the log-odds, beta_j * baked_j: zero at the training mean."""
        return np.asarray(self.baked(matrix) * self.beta)

    def score(self, matrix: np.ndarray) -> np.ndarray:
        return logit_linkinv(np.asarray(self.intercept + self.baked(matrix) @ self.beta))


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
