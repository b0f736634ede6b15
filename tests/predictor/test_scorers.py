"""The compiled scorer computes what R computes, and is used only when it does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agi_credit.predictor.scorers import (
    CompiledGlm,
    NotCompilable,
    RScorer,
    logit_linkinv,
    parity_sample,
)
from agi_credit.rruntime import LinearForm, RModel, ScoringJob, linear_form, predict_in_child
from agi_credit.store import ModelStore
from tests.conftest import rscript
from tests.predictor.conftest import MakeRegistry

FEATURES = ("AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE")


@pytest.fixture(scope="module")
def r_model(trained_store: ModelStore) -> RModel:
    return RModel.load(trained_store.artifact_path("v1"))


@pytest.fixture(scope="module")
def compiled(r_model: RModel) -> CompiledGlm:
    form = linear_form(r_model)
    assert form is not None
    return CompiledGlm.from_linear_form(form, FEATURES)


def test_inverse_logit_clamps_exactly_like_r() -> None:
    eta = [-800.0, -40.0, -30.000001, -30.0, -5.0, 0.0, 1e-12, 5.0, 30.0, 30.000001, 40.0, 800.0]
    values = ", ".join(map(repr, eta))
    r = rscript(f'cat(sprintf("%.17g", binomial()$linkinv(c({values}))), sep = "\\n")')
    r_values = [float(v) for v in r.split()]
    np.testing.assert_array_equal(logit_linkinv(np.array(eta)), np.array(r_values))


def test_compiled_equals_r_on_typical_missing_and_extreme_rows(
    compiled: CompiledGlm, r_model: RModel
) -> None:
    sample = parity_sample(compiled, rows=2000, seed=3)
    assert np.isnan(sample).any() and (np.abs(sample) >= 1e9).any()
    in_process = RScorer(model=r_model, features=FEATURES).score(sample)
    (in_child,) = predict_in_child([ScoringJob(rds=r_model.path, features=FEATURES, rows=sample)])
    np.testing.assert_allclose(compiled.score(sample), in_process, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(in_child, in_process)


def test_the_recipe_imputes_every_feature(compiled: CompiledGlm) -> None:
    assert compiled.imputed == frozenset(FEATURES)


def test_contributions_sum_to_the_log_odds(compiled: CompiledGlm) -> None:
    row = np.array([[135000.0, 513531.0, -15000.0, np.nan]])
    eta = compiled.intercept + compiled.contributions(row).sum()
    np.testing.assert_allclose(compiled.score(row), 1 / (1 + np.exp(-eta)), rtol=1e-14)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"family": "poisson", "link": "log"}, "not binomial/logit"),
        ({"has_offset": True}, "offset"),
        ({"terms": ("AMT_CREDIT",)}, "are not the features"),
    ],
)
def test_other_shapes_are_not_compiled(
    compiled: CompiledGlm, r_model: RModel, change: dict[str, object], reason: str
) -> None:
    form = linear_form(r_model)
    assert form is not None
    changed = LinearForm(**{**form.__dict__, **change})
    with pytest.raises(NotCompilable, match=reason):
        CompiledGlm.from_linear_form(changed, FEATURES)


def test_a_recipe_step_the_compiler_does_not_know_runs_in_r(
    tmp_path: Path, make_registry: MakeRegistry
) -> None:
    rds = tmp_path / "log_recipe.rds"
    rscript(f"""suppressPackageStartupMessages(library(recipes)); set.seed(2); n <- 400
        d <- data.frame(AMT_CREDIT = runif(n, 4e4, 4e6), DAYS_BIRTH = -runif(n, 7e3, 25e3))
        d$TARGET <- factor(rbinom(n, 1, 0.1))
        rec <- prep(recipe(TARGET ~ ., data = d) |> step_log(AMT_CREDIT) |>
                    step_normalize(all_numeric_predictors()), training = d, retain = FALSE)
        fit <- glm(TARGET ~ ., data = bake(rec, d), family = binomial())
        saveRDS(list(recipe = rec, fit = fit), "{rds}")""")
    registry = make_registry(model_path=rds)
    served = registry.refresh().served["v1"]
    assert served.engine == "r"
    assert "step_log" in (served.note or "")
    assert served.schema.nullable == frozenset()
    prob = registry.loader.r.run(served.scorer.score, np.array([[2e5, -9000.0]]))
    assert 0 < prob[0] < 1
