"""agi-credit as real processes: the CLI, the predictor and the sidecar on loopback ports.

Every process gets a clean environment (`clean_env`) and runs in an empty directory, so that a
developer's exported variables or `.env` cannot change a test's result.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.bodies import v1_body

REPO = Path(__file__).resolve().parents[1]
TRAIN_R = REPO / "training-job" / "train.R"
WORKDIR = Path(tempfile.mkdtemp(prefix="agi-credit-tests-"))
"""The working directory of every process a test starts: no `.env` there."""

_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "VIRTUAL_ENV", "R_HOME")

SECRET = "s" * 16 + "-test-secret-of-32-bytes-or-more"
USER, PASSWORD = "analyst", "correct horse battery"
ADMIN, ADMIN_PASSWORD = "auditor", "an admin password of sorts"


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The system's basics (PATH, HOME, locale), none of agi-credit's settings, then `extra`."""
    base = {k: v for k, v in os.environ.items() if k in _INHERITED}
    return {**base, "TZ": "UTC", "COLUMNS": "200", "TRAIN_SCRIPT": str(TRAIN_R), **(extra or {})}


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 300, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`agi-credit ARGS` in a separate process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "agi_credit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=WORKDIR,
        env=clean_env(env),
        input=stdin,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
            cwd=WORKDIR,
            env=clean_env(env),
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


@dataclass
class Server:
    """A running `agi-credit serve`."""

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

    def records(self) -> list[dict[str, Any]]:
        """The JSON lines of its log."""
        return json_records(self.logs())

    def served_version(self) -> str:
        """The version that scores a v1 request asking for none (asserts a 200)."""
        response = httpx.post(
            f"{self.url}/v1/models/agi-credit:predict",
            json=v1_body(),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["predictions"][0]["model_version"])


def json_records(log: str) -> list[dict[str, Any]]:
    """The JSON lines of a log (ours, KServe's and uvicorn's), as dicts."""
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


@contextmanager
def running_server(
    args: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    wait_for: str = "/v2/health/ready",
) -> Iterator[Server]:
    """`agi-credit serve ARGS` until `wait_for` answers 200 (ready, by default; pass
    `/v2/health/live` for a server that cannot be ready yet); stopped (SIGTERM) afterwards."""
    http_port, grpc_port = free_port(), free_port()
    command = ["serve", *args, "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    with agi_credit_process(
        command,
        log_path,
        f"http://127.0.0.1:{http_port}{wait_for}",
        env={"RELOAD_INTERVAL": "0.1", **(env or {})},
        timeout=timeout,
    ) as process:
        yield Server(process, http_port, grpc_port, log_path)


@dataclass
class Sidecar:
    """A running `agi-credit auth` in front of a predictor."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    predictor: Server
    grpc_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The JSON lines of its log."""
        return json_records(self.logs())

    def token(self, user: str = USER, password: str = PASSWORD) -> str:
        response = httpx.post(f"{self.url}/login", json={"username": user, "password": password})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


@contextmanager
def running_sidecar(
    predictor: Server, log_path: Path, *, env: dict[str, str], timeout: float = 30
) -> Iterator[Sidecar]:
    """`agi-credit auth` in front of `predictor` until it answers; stopped afterwards. No
    metrics port: tests run many sidecars at once."""
    port, grpc_port = free_port(), free_port()
    command = ["auth", "--upstream", predictor.url, "--port", str(port), "--metrics-port", "0"]
    command += [
        "--grpc-port",
        str(grpc_port),
        "--grpc-upstream",
        f"127.0.0.1:{predictor.grpc_port}",
    ]
    with agi_credit_process(
        command, log_path, f"http://127.0.0.1:{port}/health", env=env, timeout=timeout
    ) as process:
        yield Sidecar(process, port, log_path, predictor, grpc_port)


def users_add(
    path: Path, name: str, password: str, role: str = "predict"
) -> subprocess.CompletedProcess[str]:
    """`agi-credit users add NAME --file PATH --role ROLE --password-stdin`, as a user runs it."""
    return run_cli(
        "users", "add", name, "--file", path, "--role", role, "--password-stdin",
        stdin=password + "\n", timeout=60,
    )  # fmt: skip


def prod_env(users_file: Path, **settings: str) -> dict[str, str]:
    """A prod sidecar's environment: the test secret, `users_file`, and `settings` (env names)."""
    return {"ENV": "prod", "JWT_SECRET": SECRET, "USERS_FILE": str(users_file), **settings}


def make_users_file(path: Path, users: dict[str, str], roles: dict[str, str] | None = None) -> Path:
    """A users file of `users` (name -> password), with `roles` (name -> role; predict)."""
    for name, password in users.items():
        result = users_add(path, name, password, (roles or {}).get(name, "predict"))
        assert result.returncode == 0, result.stderr
    return path


def triton_grpc(target: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`calls` made with tritonclient.grpc against `target`, in a process of its own (see
    tests/auth/triton_grpc.py); one result per call."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.auth.triton_grpc", target],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def memory_mb(pid: int, field: str) -> float:
    """A process's `VmRSS` or `VmHWM` (its peak), in MB (10^6 bytes)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) * 1024 / 1e6


def reset_peak(pid: int) -> None:
    """VmHWM := VmRSS (Linux >= 4.0): the peak from now on."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
