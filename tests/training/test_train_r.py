"""training-job/train.R keeps the data scientist's contract (docs/architecture.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.servers import TRAIN_R, clean_env

FEATURES = ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE"]


def run_train_r(data: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["Rscript", "--vanilla", str(TRAIN_R)],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env({"DATA_PATH": str(data), "MODEL_OUTPUT_PATH": str(output)}),
    )


@pytest.fixture(scope="module")
def trained(small_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("train_r")
    result = run_train_r(small_csv, output)
    assert result.returncode == 0, result.stderr
    return output


def test_writes_the_model_and_its_features(trained: Path) -> None:
    assert (trained / "model_v1.rds").is_file()
    metadata = json.loads((trained / "model_metadata.json").read_text())
    assert metadata["features"] == FEATURES


def test_the_saved_model_is_slim_and_holds_no_training_data(trained: Path) -> None:
    assert (trained / "model_v1.rds").stat().st_size < 50_000
    check = subprocess.run(
        [
            "Rscript",
            "--vanilla",
            "-e",
            f"""
        m <- readRDS("{trained / "model_v1.rds"}")
        stopifnot(is.null(m$fit$data), is.null(m$fit$model), is.null(m$fit$residuals),
                  is.null(m$fit$fitted.values), is.null(m$fit$y), is.null(m$fit$qr$qr),
                  nrow(m$recipe$template) == 0,
                  identical(environment(m$fit$terms), globalenv()))""",
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert check.returncode == 0, check.stderr


def test_prints_progress(small_csv: Path, tmp_path: Path) -> None:
    result = run_train_r(small_csv, tmp_path)
    assert "reading" in result.stdout and "fitting binomial glm" in result.stdout


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "data file not found"),
        ("TARGET,AMT_CREDIT\n0,1\n", "missing columns in"),
        ("TARGET," + ",".join(FEATURES) + "\n", "no rows in"),
        ("TARGET," + ",".join(FEATURES) + "\n2,1,2,3,4\n0,1,2,3,4\n", "TARGET must be 0 or 1"),
        ("TARGET," + ",".join(FEATURES) + "\n1,1,2,3,4\n1,1,2,3,5\n", "single class"),
    ],
)
def test_bad_data_exits_non_zero_with_a_clear_message(
    tmp_path: Path, content: str | None, message: str
) -> None:
    data = tmp_path / "data.csv"
    if content is not None:
        _write(data, content)
    result = run_train_r(data, tmp_path / "out")
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "out" / "model_v1.rds").exists()
