"""Fixtures of the predictor tests: a store with three kinds of versions and real servers
started as `agi-credit serve` processes on loopback ports."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from agi_credit.store import ModelStore
from tests.conftest import agi_credit_process

FEATURES = ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE"]


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
    command = ["serve", *args, "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    with agi_credit_process(
        command,
        log_path,
        f"http://127.0.0.1:{http_port}/v2/health/ready",
        env={"RELOAD_INTERVAL": "0.1", **(env or {})},
        timeout=timeout,
    ) as process:
        yield Server(process, http_port, grpc_port, log_path)


@pytest.fixture(scope="module")
def server(serving_store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on the (unchanged) serving store, shared by a test module."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(["--store", str(serving_store.root)], log) as running:
        yield running
