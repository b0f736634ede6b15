"""The compiled scorer computes what R computes, and is used only when it does; a row's score
is the same bits whatever else is in its batch, and on any processor."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Context, Decimal
from pathlib import Path

import numpy as np
import pytest
from bench.scorer import applicants
from hypothesis import given
from hypothesis import strategies as st
from numpy._core._multiarray_umath import __cpu_features__  # what numpy found on this CPU

from agi_credit.predictor.scorers import (
    FLOAT_ROWS,
    CompiledGlm,
    NotCompilable,
    RScorer,
    exp_ieee,
    logit_linkinv,
    parity_sample,
)
from agi_credit.rruntime import LinearForm, RModel, ScoringJob, linear_form, predict_in_child
from agi_credit.store import ModelStore
from tests.conftest import rscript
from tests.hostile import fuzzed
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
    rows = np.array([[135000.0, 513531.0, -15000.0, np.nan], [5000.0, 2e5, -12000.0, 1.8e5]])
    terms = compiled.contributions(rows)
    eta = compiled.intercept + terms[:, 0] + terms[:, 1] + terms[:, 2] + terms[:, 3]
    assert bits(compiled.log_odds(rows)) == bits(eta)
    np.testing.assert_allclose(compiled.score(rows), 1 / (1 + np.exp(-eta)), rtol=1e-14)


# --- batch invariance ---------------------------------------------------------------------


def bits(values: np.ndarray) -> list[int]:
    """The float64s' bit patterns: equal only when the numbers are the same to the last bit
    (and two NaNs only when they are the same NaN)."""
    return np.asarray(values, dtype=np.float64).view(np.int64).tolist()


EXTREMES = [0.0, -0.0, 1e-300, 5e-324, 1e9, -1e9, 1e15, -1e15, 1e300, -1e300]
value = st.one_of(
    st.floats(-1e7, 1e7),
    st.sampled_from(EXTREMES),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(float("nan")),  # every feature is imputed in this model
)
row_values = st.lists(value, min_size=len(FEATURES), max_size=len(FEATURES))


def filler(rows: int, seed: int) -> np.ndarray:
    """Other applicants for a batch: typical, extreme and missing values."""
    rng = np.random.default_rng(seed)
    batch = applicants(rows, seed)
    batch[rng.random(batch.shape) < 0.05] = np.nan
    extreme = rng.random(batch.shape) < 0.01
    batch[extreme] = rng.choice(EXTREMES, size=int(extreme.sum()))
    return batch


@st.composite
def placed_rows(draw: st.DrawFn, max_rows: int) -> tuple[np.ndarray, int]:
    """A batch of 1 to `max_rows` applicants (small ones often) with a drawn row at a drawn
    position: (batch, position)."""
    row = draw(row_values)
    size = draw(st.one_of(st.integers(1, 40), st.integers(1, max_rows)))
    batch = filler(size, draw(st.integers(0, 2**32 - 1)))
    position = draw(st.integers(0, size - 1))
    batch[position] = row
    return batch, position


def test_a_rows_score_does_not_depend_on_its_batch(compiled: CompiledGlm) -> None:
    @given(placed_rows(max_rows=100_000))
    def check(placed: tuple[np.ndarray, int]) -> None:
        batch, i = placed
        alone = compiled.score(batch[i : i + 1].copy())
        assert bits(compiled.score(batch)[i : i + 1]) == bits(alone)

    fuzzed(300)(check)()


def test_every_row_of_a_batch_scores_as_it_does_alone(compiled: CompiledGlm) -> None:
    """Both ways of computing (Python floats for small batches, numpy chunks for the rest)
    and every chunk boundary give each row the same bits."""
    batch = filler(20_000, seed=7)
    together = compiled.score(batch)
    alone = [compiled.score(batch[i : i + 1])[0] for i in range(len(batch))]
    assert bits(together) == bits(np.array(alone))
    for size in (2, FLOAT_ROWS, FLOAT_ROWS + 1, 1000):
        assert bits(compiled.score(batch[:size])) == bits(together[:size])


def test_log_odds_and_contributions_do_not_depend_on_the_batch(compiled: CompiledGlm) -> None:
    batch = filler(5000, seed=8)
    eta, terms = compiled.log_odds(batch), compiled.contributions(batch)
    for i in (0, 1, 2500, 4999):
        assert bits(compiled.log_odds(batch[i : i + 1])) == bits(eta[i : i + 1])
        assert bits(compiled.contributions(batch[i : i + 1])) == bits(terms[i : i + 1])


def exact_exp(x: float) -> float:
    """e**x correctly rounded to float64 (50 significant digits, then one rounding)."""
    return float(Decimal(x).exp(Context(prec=50)))


def ulps_apart(a: float, b: float) -> int:
    return abs(int(np.float64(a).view(np.int64)) - int(np.float64(b).view(np.int64)))


def test_exp_is_within_one_ulp_of_the_exact_value() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.uniform(-30, 30, 20_000), [-30.0, 30.0, 0.0, -0.0, 1e-300, 0.5 * np.log(2)]]
    )
    result = exp_ieee(x)
    worst = max(
        ulps_apart(r, exact_exp(v)) for v, r in zip(x.tolist(), result.tolist(), strict=True)
    )
    assert worst <= 1
    assert np.isnan(exp_ieee(np.array([np.nan]))).all()


SCORE_IN_CHILD = """
import sys
import numpy as np
from agi_credit.predictor.scorers import CompiledGlm
steps = tuple((kind, np.array(a), np.array(b)) for kind, a, b in {steps!r})
glm = CompiledGlm(features={features!r}, steps=steps, intercept={intercept!r},
                  beta=np.array({beta!r}))
rows = np.frombuffer(sys.stdin.buffer.read()).reshape(-1, {n_features})
out = sys.stdout.buffer
out.write(glm.score(rows).tobytes())
out.write(np.exp(np.linspace(-30, 30, 100_000)).tobytes())
"""

WITHOUT_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR"
WITHOUT_AVX2 = "X86_V3 " + WITHOUT_AVX512


@pytest.mark.parametrize("disabled", [WITHOUT_AVX512, WITHOUT_AVX2], ids=["no-avx512", "no-avx2"])
def test_scores_are_the_same_on_a_processor_without_avx512_or_avx2(
    compiled: CompiledGlm, disabled: str
) -> None:
    """numpy picks its kernels by CPU; NPY_DISABLE_CPU_FEATURES makes it pick those of an
    older processor in a child process. Our scores must not change; numpy's exp does when
    this processor has AVX-512 (so the child really computes differently)."""
    code = SCORE_IN_CHILD.format(
        steps=[(kind, a.tolist(), b.tolist()) for kind, a, b in compiled.steps],
        features=compiled.features,
        intercept=compiled.intercept,
        beta=compiled.beta.tolist(),
        n_features=len(compiled.features),
    )
    rows = filler(50_000, seed=9)

    def run(disable: str) -> tuple[np.ndarray, np.ndarray]:
        env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": disable}
        out = subprocess.run(
            [sys.executable, "-c", code], input=rows.tobytes(), env=env, capture_output=True
        )
        assert out.returncode == 0, out.stderr.decode()[-2000:]
        values = np.frombuffer(out.stdout)
        return values[: len(rows)], values[len(rows) :]

    native, native_exp = run("")
    older, older_exp = run(disabled)
    assert bits(native) == bits(older) == bits(compiled.score(rows))
    if __cpu_features__.get("AVX512F"):
        assert bits(native_exp) != bits(older_exp)


def test_r_scores_a_row_the_same_in_any_batch(r_model: RModel) -> None:
    """R's own predict (the R engine): reference BLAS sums a product column by column."""
    scorer = RScorer(model=r_model, features=FEATURES)
    batch = filler(3000, seed=10)
    together = scorer.score(batch)
    for i in (0, 1, 1234, 2999):
        assert bits(scorer.score(batch[i : i + 1])) == bits(together[i : i + 1])


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
