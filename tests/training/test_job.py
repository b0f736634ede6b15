"""The training job end to end: real train.R, real R validation, a real store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agi_credit.data import generate_frame, write_csv
from agi_credit.store import ModelStore, Status, StoreError
from agi_credit.training import TrainingError
from tests.conftest import Train, snapshot
from tests.mounts import read_only_mount
from tests.servers import WORKDIR, clean_env, run_cli

# A data scientist's model that learned nothing: TARGET shuffled, a plain glm (no recipe).
NOISE_MODEL_R = """
suppressPackageStartupMessages(library(data.table))
d <- fread(Sys.getenv("DATA_PATH"), select = c("TARGET", "AMT_CREDIT"))
set.seed(1); d$TARGET <- sample(d$TARGET)
fit <- glm(TARGET ~ AMT_CREDIT, data = d, family = binomial())
out <- Sys.getenv("MODEL_OUTPUT_PATH")
saveRDS(fit, file.path(out, "model_v1.rds"))
jsonlite::write_json(list(features = "AMT_CREDIT"), file.path(out, "model_metadata.json"))
"""


def r_script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "train.R"
    path.write_text(body)
    return path


def test_the_first_version_is_registered_promoted_and_reported(
    store: ModelStore, train: Train
) -> None:
    result = train(store)
    entry = store.get("v1")
    assert result.promoted and entry.status is Status.ACTIVE
    assert store.read().current_version == "v1"
    assert entry.features == ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE"]
    assert entry.artifact is not None
    artifact = store.root / entry.artifact.path
    assert artifact.stat().st_size == entry.artifact.size_bytes < 1_000_000
    metrics = entry.metrics or {}
    assert {"auc", "gini", "ks", "brier", "log_loss", "default_rate", "rows"} <= set(metrics)
    assert 0.52 < metrics["auc"] < 0.75
    data = entry.training_data or {}
    assert data["rows"] == 20_000 and data["train_rows"] + data["holdout_rows"] == 20_000
    assert data["official"] is False and len(data["sha256"]) == 64
    runtime = entry.runtime or {}
    assert runtime["r_version"] and "recipes" in runtime["packages"]
    assert entry.decision_threshold == 0.5
    assert (entry.gate or {})["passed"] is True
    report = store.report_dir("v1")
    assert {p.name for p in report.iterdir()} == {"model_card.md", "roc.png", "calibration.png"}
    assert (report / "roc.png").read_bytes().startswith(b"\x89PNG")
    assert "## Caveats" in (report / "model_card.md").read_text()
    assert list(store.staging_dir.iterdir()) == []


def test_a_second_training_registers_v2_and_archives_v1(store: ModelStore, train: Train) -> None:
    train(store)
    result = train(store)
    assert result.entry.version == "v2" and result.promoted
    metadata = store.read()
    assert metadata.current_version == "v2"
    assert metadata.status_of(metadata.models[0]) is Status.ARCHIVED


def test_the_gate_keeps_a_worse_model_as_a_candidate(
    store: ModelStore, train: Train, tmp_path: Path
) -> None:
    train(store)
    result = train(store, train_script=r_script(tmp_path, NOISE_MODEL_R), min_auc=0.0)
    assert not result.promoted
    assert "worse than v1's" in result.reason
    entry = store.get("v2")
    assert entry.status is Status.CANDIDATE and "worse than" in (entry.status_reason or "")
    assert entry.features == ["AMT_CREDIT"]  # the generic R path validated it
    assert store.read().current_version == "v1"
    # A person can still promote it, and roll back.
    assert store.promote("v2").version == "v2"
    assert store.rollback().version == "v1"


def test_a_model_below_min_auc_is_a_candidate(store: ModelStore, train: Train) -> None:
    result = train(store, min_auc=0.99)
    assert not result.promoted and "below MIN_AUC 0.9900" in result.reason
    assert store.read().current_version is None


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            'stop("a bug in the data science code")',
            "train.R failed (exit 1): Error: a bug in the data science code",
        ),
        (
            'writeLines("garbage", file.path(Sys.getenv("MODEL_OUTPUT_PATH"), "model_v1.rds"))\n'
            'jsonlite::write_json(list(features = "AMT_CREDIT"),\n'
            '  file.path(Sys.getenv("MODEL_OUTPUT_PATH"), "model_metadata.json"))',
            "the trained model does not load in R",
        ),
        (
            'saveRDS(1, file.path(Sys.getenv("MODEL_OUTPUT_PATH"), "model_v1.rds"))',
            "train.R did not write model_metadata.json",
        ),
        (
            "saveRDS(glm(c(0,1,1,0) ~ c(1,2,3,4), family = binomial()),\n"
            '  file.path(Sys.getenv("MODEL_OUTPUT_PATH"), "model_v1.rds"))\n'
            'jsonlite::write_json(list(features = "NOT_A_COLUMN"),\n'
            '  file.path(Sys.getenv("MODEL_OUTPUT_PATH"), "model_metadata.json"))',
            "differ from the declared features",
        ),
    ],
)
def test_a_failing_train_script_leaves_the_store_unchanged(
    store: ModelStore,
    train: Train,
    tmp_path: Path,
    script: str,
    message: str,
) -> None:
    train(store)
    before = snapshot(store.root)
    with pytest.raises(TrainingError) as failure:
        train(store, train_script=r_script(tmp_path, script))
    assert message in str(failure.value)
    assert snapshot(store.root) == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: [*lines[:100], "1,2,3", *lines[100:]], "not a readable CSV file"),
        (
            lambda lines: [
                ",".join(f for i, f in enumerate(line.split(",")) if i != 8) for line in lines
            ],
            "missing columns: AMT_CREDIT",
        ),
        (
            lambda lines: [lines[0], *[line.replace(",0,", ",7,", 1) for line in lines[1:]]],
            "TARGET must be 0 or 1",
        ),
    ],
)
def test_bad_data_leaves_the_store_unchanged(
    store: ModelStore,
    train: Train,
    small_csv: Path,
    tmp_path: Path,
    edit: object,
    message: str,
) -> None:
    train(store)
    before = snapshot(store.root)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(edit(small_csv.read_text().splitlines())) + "\n")  # type: ignore[operator]
    with pytest.raises(TrainingError, match=message):
        train(store, data=bad)
    assert snapshot(store.root) == before


def test_a_train_script_that_hangs_is_stopped(
    store: ModelStore, train: Train, tmp_path: Path
) -> None:
    hanging = {"train_script": r_script(tmp_path, "Sys.sleep(60)"), "train_timeout_seconds": 2}
    started = time.monotonic()
    with pytest.raises(TrainingError, match="ran longer than 2 s and was stopped"):
        train(store, **hanging)
    assert time.monotonic() - started < 30
    assert list(store.staging_dir.iterdir()) == []
    assert not store.metadata_path.exists()


def test_a_job_stopped_with_sigterm_stops_r_and_leaves_the_store_as_it_was(
    store: ModelStore, train: Train, small_csv: Path, tmp_path: Path
) -> None:
    """What `docker stop` or a deleted Kubernetes Job sends: the job unwinds at once."""
    train(store)
    before = snapshot(store.root)
    script = r_script(tmp_path, 'cat("fitting\\n"); flush(stdout()); Sys.sleep(120)')
    with subprocess.Popen(
        [sys.executable, "-m", "agi_credit", "train", "--data", small_csv, "--store", store.root],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=WORKDIR,
        env=clean_env({"TRAIN_SCRIPT": str(script)}),
    ) as job:
        assert job.stdout is not None
        for line in job.stdout:
            if "R | fitting" in line:
                break
        job.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert job.wait(timeout=20) == 128 + signal.SIGTERM
        assert time.monotonic() - started < 10
    assert snapshot(store.root) == before
    assert list(store.staging_dir.iterdir()) == []


def test_a_read_only_store_is_reported_and_left_unchanged(store: ModelStore, train: Train) -> None:
    train(store)
    before = snapshot(store.root)
    with read_only_mount(store.root), pytest.raises(StoreError, match="Read-only file system"):
        train(store)
    assert snapshot(store.root) == before


@pytest.mark.parametrize("directory", ["models", "reports"])
def test_a_registration_that_fails_late_removes_what_it_wrote(
    store: ModelStore, train: Train, directory: str
) -> None:
    train(store)
    before = snapshot(store.root)
    with read_only_mount(store.root / directory):
        with pytest.raises(StoreError, match="Read-only file system"):
            train(store)
        assert snapshot(store.root) == before
    assert store.read().current_version == "v1"


def test_without_data_the_cli_says_how_to_get_it(tmp_path: Path) -> None:
    result = run_cli("train", "--data", tmp_path / "none.csv", "--store", tmp_path / "s")
    assert result.returncode == 1
    assert "no training data at" in result.stderr and "--synthetic" in result.stderr
    assert not (tmp_path / "s" / "metadata.json").exists()


def test_cli_train_synthetic_generates_the_data_then_trains(tmp_path: Path) -> None:
    data, store = tmp_path / "data" / "application_train.csv", tmp_path / "store"
    result = run_cli(
        "train",
        "--synthetic",
        "--rows",
        "8000",
        "--data",
        data,
        "--store",
        store,
        env={"MIN_AUC": "0.5", "AGI_CREDIT_ACTOR": "ci"},
    )
    assert result.returncode == 0, result.stderr
    assert data.is_file()
    assert "registered v1: promoted" in result.stdout
    metadata = json.loads((store / "metadata.json").read_text())
    assert metadata["history"][0]["actor"] == "ci"


def test_eight_trainings_at_once_give_eight_versions(tmp_path: Path) -> None:
    data, store = tmp_path / "data.csv", tmp_path / "store"
    write_csv(generate_frame(5_000, seed=3), data)
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agi_credit",
                "train",
                "--data",
                str(data),
                "--store",
                str(store),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env({"MIN_AUC": "0", "AUC_TOLERANCE": "1"}),
            cwd=WORKDIR,
        )
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, [err for _, err in outputs]
    metadata = ModelStore(store).read()
    assert sorted(m.number for m in metadata.models) == list(range(1, 9))
    assert len(metadata.history) == 16  # 8 registrations, 8 promotions
    assert sorted(p.name for p in (store / "models").iterdir()) == sorted(
        f"model_v{i}.rds" for i in range(1, 9)
    )
