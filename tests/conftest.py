"""Shared fixtures: small synthetic data and trained stores. Processes: `tests/servers.py`."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agi_credit.data import generate_frame, write_csv
from agi_credit.settings import TrainingSettings
from agi_credit.store import ModelStore
from agi_credit.training import TrainingResult, run_training
from tests.servers import TRAIN_R, clean_env

SMALL_ROWS = 20_000


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("e2e", "end-to-end checks of a deployed stack (tests/e2e)")
    group.addoption("--stack-url", help="the stack's auth sidecar, e.g. http://127.0.0.1:8000")
    group.addoption("--stack-run", help="a command prefix that runs beside the stack's store")
    group.addoption("--stack-grpc", help="the sidecar's v2 gRPC port, e.g. 127.0.0.1:8001")
    group.addoption("--stack-user", help="a user of the stack (default: admin, ENV=dev)")
    group.addoption("--stack-password", help="that user's password (default: 123456)")
    group.addoption(
        "--kind-namespace", help="the stack's namespace in a cluster (tests/e2e/kind, kind-e2e)"
    )
    group.addoption("--kind-context", help="its kubeconfig context (default: the current one)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/e2e runs only against a stack (`make test-containers`), not in `make test`."""
    if "e2e" in collection_path.parts and not config.getoption("--stack-url"):
        return True
    kind = Path(__file__).parent / "e2e" / "kind"
    if collection_path.is_relative_to(kind) and not config.getoption("--kind-namespace"):
        return True  # the cluster checks need a cluster (make kind-e2e)
    return None


def rscript(code: str) -> str:
    """Run R code in a fresh Rscript process (independent of any rpy2 session)."""
    result = subprocess.run(
        ["Rscript", "--vanilla", "-e", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
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


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Whether `condition()` holds within `timeout` seconds (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


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


def training_settings(store: ModelStore, data: Path, **overrides: Any) -> TrainingSettings:
    """The job's settings for a test: the real train.R and a gate every sane four-feature
    model passes, unless `overrides` say otherwise; no `.env` is read."""
    values: dict[str, Any] = {
        "model_store": store.root,
        "data_path": data,
        "train_script": TRAIN_R,
        "min_auc": 0.52,
        "auc_tolerance": 0.01,
        "actor": "pytest",
        **overrides,
    }
    return TrainingSettings(_env_file=None, **values)  # type: ignore[call-arg]


def train_quietly(store: ModelStore, data: Path, **overrides: Any) -> TrainingResult:
    """The whole training job, in-process, against `store`."""
    return run_training(training_settings(store, data, **overrides), log=lambda _line: None)


Train = Callable[..., TrainingResult]


@pytest.fixture
def train(small_csv: Path) -> Train:
    """`train(store, data=..., **settings)`: the training job on the small CSV by default."""

    def _train(store: ModelStore, *, data: Path = small_csv, **overrides: Any) -> TrainingResult:
        return train_quietly(store, data, **overrides)

    return _train


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "store")


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory, small_csv: Path) -> ModelStore:
    """A store with v1 trained by the real job (read-only use: copy it to change it)."""
    store = ModelStore(tmp_path_factory.mktemp("trained") / "store")
    train_quietly(store, small_csv)
    return store


# A plain glm without a recipe: scored in R.
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
    for _ in range(2):
        train_quietly(store, small_csv, min_auc=0.0, auc_tolerance=1.0)
    plain = root / "plain_glm.R"
    plain.write_text(PLAIN_GLM_R)
    result = train_quietly(store, small_csv, train_script=plain, min_auc=0.99, auc_tolerance=0.0)
    assert result.entry.version == "v3" and not result.promoted
    return store


@pytest.fixture
def store_copy(serving_store: ModelStore, tmp_path: Path) -> ModelStore:
    """A private copy of the serving store, for tests that change it."""
    target = tmp_path / "store"
    shutil.copytree(serving_store.root, target)
    return ModelStore(target)
