"""Fixtures of the predictor tests: a store with three kinds of versions and real servers
started as `agi-credit serve` processes on loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agi_credit.store import ModelStore
from agi_credit.training import TrainingConfig, run_training
from tests.conftest import REPO, TRAIN_R

FEATURES = ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE"]

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(
    args: list[str], log_path: Path, *, env: dict[str, str] | None = None, timeout: float = 60
) -> Iterator[Server]:
    """`agi-credit serve ARGS` until it is ready; stopped (SIGTERM) afterwards."""
    http_port, grpc_port = free_port(), free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agi_credit",
                "serve",
                *args,
                "--http-port",
                str(http_port),
                "--grpc-port",
                str(grpc_port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "RELOAD_INTERVAL": "0.1", **(env or {})},
        )
    server = Server(process, http_port, grpc_port, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited {process.returncode}:\n{server.logs()}")
            try:
                if httpx.get(f"{server.url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready in {timeout} s:\n{server.logs()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(serving_store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on the (unchanged) serving store, shared by a test module."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(["--store", str(serving_store.root)], log) as running:
        yield running
