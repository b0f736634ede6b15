"""Fixtures of the sidecar tests: a real predictor and a real sidecar, on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agi_credit.store import ModelStore
from tests.conftest import REPO, agi_credit_process
from tests.predictor.conftest import Server, free_port, running_server

SECRET = "s" * 16 + "-test-secret-of-32-bytes-or-more"
USER, PASSWORD = "analyst", "correct horse battery"


@dataclass
class Sidecar:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    predictor: Server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def token(self, user: str = USER, password: str = PASSWORD) -> str:
        response = httpx.post(f"{self.url}/login", json={"username": user, "password": password})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


def users_add(path: Path, name: str, password: str) -> subprocess.CompletedProcess[str]:
    """`agi-credit users add NAME --file PATH --password-stdin`, as a user runs it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agi_credit",
            "users",
            "add",
            name,
            "--file",
            str(path),
            "--password-stdin",
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def make_users_file(path: Path, users: dict[str, str]) -> Path:
    for name, password in users.items():
        result = users_add(path, name, password)
        assert result.returncode == 0, result.stderr
    return path


@contextmanager
def running_sidecar(
    predictor: Server, log_path: Path, *, env: dict[str, str], timeout: float = 30
) -> Iterator[Sidecar]:
    """`agi-credit auth` in front of `predictor` until it answers; stopped afterwards."""
    port = free_port()
    command = ["auth", "--upstream", predictor.url, "--port", str(port)]
    with agi_credit_process(
        command, log_path, f"http://127.0.0.1:{port}/health", env=env, timeout=timeout
    ) as process:
        yield Sidecar(process, port, log_path, predictor)


@pytest.fixture(scope="module")
def predictor(
    serving_store: ModelStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("predictor") / "predictor.log"
    with running_server(["--store", str(serving_store.root)], log) as server:
        yield server


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_users_file(
        tmp_path_factory.mktemp("users") / "users.yaml", {USER: PASSWORD, "bob": "bobs password 1"}
    )


@pytest.fixture(scope="module")
def sidecar(
    predictor: Server, users_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sidecar]:
    """A prod-configured sidecar; login limits high enough for the tests that share it."""
    log = tmp_path_factory.mktemp("sidecar") / "sidecar.log"
    env = {
        "ENV": "prod",
        "JWT_SECRET": SECRET,
        "USERS_FILE": str(users_file),
        "LOGIN_ATTEMPTS_PER_CLIENT": "1000",
        "LOGIN_FAILURES_PER_USER": "1000",
    }
    with running_sidecar(predictor, log, env=env) as running:
        yield running
