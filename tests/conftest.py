"""Shared fixtures: small synthetic data, trained stores, and the CLI as a real process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from agi_credit.data import generate_frame, write_csv
from agi_credit.store import ModelStore
from agi_credit.training import TrainingConfig, TrainingResult, run_training

REPO = Path(__file__).resolve().parents[1]
TRAIN_R = REPO / "training-job" / "train.R"
SMALL_ROWS = 20_000


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`agi-credit ARGS` in a separate process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "agi_credit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@contextmanager
def agi_credit_process(
    args: list[str],
    log_path: Path,
    ready_url: str,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """`agi-credit ARGS` in the background until `ready_url` answers 200; stopped with
    SIGTERM afterwards. Its output goes to `log_path`."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agi_credit", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"{args[0]} exited {process.returncode}:\n"
                    + log_path.read_text(errors="replace")
                )
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{args[0]} not ready in {timeout} s:\n" + log_path.read_text(errors="replace")
                )
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rscript(code: str) -> str:
    """Run R code in a fresh Rscript process (independent of any rpy2 session)."""
    result = subprocess.run(
        ["Rscript", "--vanilla", "-e", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def r_predictions(rds: Path, rows: dict[str, list[float]], expr: str) -> np.ndarray:
    """R's own predictions: `expr` evaluated with the model as `m`, the rows as `nd`."""
    frame = ", ".join(
        f"{k} = c({', '.join('NA' if np.isnan(v) else repr(float(v)) for v in vals)})"
        for k, vals in rows.items()
    )
    out = rscript(f"""suppressPackageStartupMessages(library(recipes))
        m <- readRDS("{rds}"); nd <- data.frame({frame})
        cat(jsonlite::toJSON({expr}, digits = NA))""")
    return np.array(json.loads(out), dtype=float)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` with the sha256 of its content: equal snapshots, equal stores."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    } | {
        str(p.relative_to(root)) + "/": "dir"
        for p in root.rglob("*")
        if p.is_dir() and p.name != "staging"
    }


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20,000-row synthetic application_train.csv, made once per test session."""
    path = tmp_path_factory.mktemp("data") / "application_train.csv"
    write_csv(generate_frame(SMALL_ROWS, seed=7), path)
    return path


@pytest.fixture
def config() -> TrainingConfig:
    """The real train.R with a gate every sane four-feature model passes."""
    return TrainingConfig(script=TRAIN_R, min_auc=0.52, auc_tolerance=0.01)


Train = Callable[..., TrainingResult]


@pytest.fixture
def train(small_csv: Path, config: TrainingConfig) -> Train:
    """Run the whole training job in-process against a store."""

    def _train(
        store: ModelStore, *, data: Path = small_csv, config: TrainingConfig = config
    ) -> TrainingResult:
        return run_training(data, store, config, actor="pytest", log=lambda _line: None)

    return _train


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "store")


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory, small_csv: Path) -> ModelStore:
    """A store with v1 trained by the real job (read-only use: copy it to change it)."""
    store = ModelStore(tmp_path_factory.mktemp("trained") / "store")
    run_training(
        small_csv,
        store,
        TrainingConfig(script=TRAIN_R, min_auc=0.52, auc_tolerance=0.01),
        actor="pytest",
        log=lambda _line: None,
    )
    return store


# A plain glm without a recipe: goes through the R path.
PLAIN_GLM_R = """
suppressPackageStartupMessages(library(data.table))
d <- fread(Sys.getenv("DATA_PATH"), select = c("TARGET", "AMT_CREDIT", "DAYS_BIRTH"))
fit <- glm(TARGET ~ AMT_CREDIT + DAYS_BIRTH, data = d, family = binomial())
out <- Sys.getenv("MODEL_OUTPUT_PATH")
saveRDS(fit, file.path(out, "model_v1.rds"))
jsonlite::write_json(list(features = c("AMT_CREDIT", "DAYS_BIRTH")),
                     file.path(out, "model_metadata.json"))
"""


@pytest.fixture(scope="session")
def serving_store(tmp_path_factory: pytest.TempPathFactory, small_csv: Path) -> ModelStore:
    """v1, v2: recipe + glm (v2 current); v3: a plain glm, candidate, scored in R."""
    root = tmp_path_factory.mktemp("serving")
    store = ModelStore(root / "store")
    config = TrainingConfig(script=TRAIN_R, min_auc=0.0, auc_tolerance=1.0)
    for _ in range(2):
        run_training(small_csv, store, config, actor="pytest", log=lambda _line: None)
    plain = root / "plain_glm.R"
    plain.write_text(PLAIN_GLM_R)
    result = run_training(
        small_csv,
        store,
        TrainingConfig(script=plain, min_auc=0.99, auc_tolerance=0.0),
        actor="pytest",
        log=lambda _line: None,
    )
    assert result.entry.version == "v3" and not result.promoted
    return store


@pytest.fixture
def store_copy(serving_store: ModelStore, tmp_path: Path) -> ModelStore:
    """A private copy of the serving store, for tests that change it."""
    target = tmp_path / "store"
    shutil.copytree(serving_store.root, target)
    return ModelStore(target)
