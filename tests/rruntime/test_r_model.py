"""R models load once and score exactly as R's own predict does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agi_credit.rruntime import RError, RModel, r_environment
from agi_credit.store import ModelStore
from tests.conftest import r_predictions, rscript

FEATURES = ("AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE")
ROWS = {
    "AMT_INCOME_TOTAL": [5000.0, 135000.0, np.nan, 1.17e8],
    "AMT_CREDIT": [200000.0, 513531.0, 45000.0, 4.05e6],
    "DAYS_BIRTH": [-12000.0, -20000.0, -7489.0, -25229.0],
    "AMT_GOODS_PRICE": [180000.0, np.nan, 40500.0, 4.05e6],
}


@pytest.fixture(scope="module")
def model_path(trained_store: ModelStore) -> Path:
    return trained_store.artifact_path("v1")


def test_the_pipeline_model_is_a_recipe_and_glm(model_path: Path) -> None:
    model = RModel.load(model_path)
    assert model.shape == "recipe+glm"
    assert model.features == FEATURES


def test_predictions_equal_rs_own_predict(model_path: Path) -> None:
    ours = RModel.load(model_path).predict_proba(ROWS)
    theirs = r_predictions(
        model_path, ROWS, "predict(m$fit, bake(m$recipe, new_data = nd), type = 'response')"
    )
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert ((ours > 0) & (ours < 1)).all()


def test_integer_inputs_are_coerced_to_double(model_path: Path) -> None:
    model = RModel.load(model_path)
    as_ints = {
        k: np.array([5000, 200000, -12000, 180000][i : i + 1], dtype=np.int64)
        for i, k in enumerate(FEATURES)
    }
    as_floats = {k: v.astype(float) for k, v in as_ints.items()}
    np.testing.assert_array_equal(model.predict_proba(as_ints), model.predict_proba(as_floats))


def test_missing_values_are_imputed_not_propagated(model_path: Path) -> None:
    nothing_known = {k: [np.nan] for k in FEATURES}
    assert np.isfinite(RModel.load(model_path).predict_proba(nothing_known)).all()


def test_any_r_model_with_a_predict_method_goes_through_r(tmp_path: Path) -> None:
    rds = tmp_path / "plain_glm.rds"
    rscript(f"""set.seed(1); n <- 500
        d <- data.frame(AMT_CREDIT = runif(n, 4e4, 4e6), DAYS_BIRTH = -runif(n, 7000, 25000))
        d$TARGET <- rbinom(n, 1, plogis(-2 + d$DAYS_BIRTH / 10000))
        saveRDS(glm(TARGET ~ AMT_CREDIT + DAYS_BIRTH, data = d, family = binomial()), "{rds}")""")
    model = RModel.load(rds)
    assert model.shape == "generic"
    assert model.features == ("AMT_CREDIT", "DAYS_BIRTH")
    rows = {"AMT_CREDIT": [2e5, 1e6], "DAYS_BIRTH": [-9000.0, -21000.0]}
    expected = r_predictions(rds, rows, "predict(m, newdata = nd, type = 'response')")
    np.testing.assert_allclose(model.predict_proba(rows), expected, rtol=0, atol=1e-12)


def test_a_corrupt_file_is_an_r_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.rds"
    corrupt.write_bytes(b"\x1f\x8b this is not a serialized R object")
    with pytest.raises(RError, match=r"R cannot read corrupt\.rds"):
        RModel.load(corrupt)


def test_a_missing_file_is_an_r_error(tmp_path: Path) -> None:
    with pytest.raises(RError, match="model file not found"):
        RModel.load(tmp_path / "absent.rds")


def test_a_failing_predict_is_an_r_error(model_path: Path) -> None:
    model = RModel.load(model_path)
    with pytest.raises(RError, match="R predict failed"):
        model.predict_proba({"AMT_CREDIT": [1.0]})  # the recipe needs all four features


def test_r_environment_names_r_and_the_model_packages() -> None:
    env = r_environment()
    assert str(env["r_version"]).startswith("4.")
    assert set(env["packages"]) == {"recipes", "data.table", "jsonlite"}  # type: ignore[arg-type]
