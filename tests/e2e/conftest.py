"""The end-to-end checks run against a deployed stack: compose here, a pod or kind later.

    pytest tests/e2e --stack-url http://127.0.0.1:8000 \\
        --stack-run "docker compose -f docker-compose.yml -f docker-compose.test.yml \\
                     run --rm -T --entrypoint env training"

`--stack-url` is the auth sidecar, the only door, and `--stack-grpc` its v2 gRPC port
(host:port). `--stack-run` is a command prefix that runs
a command beside the stack's model store (at $MODEL_STORE): the tests append
`agi-credit train …`, `agi-credit promote vN`, or `sh -c 'cat "$MODEL_STORE/…"'`. On a
cluster the prefix is `python -m tests.e2e.kind.run_job … --` (a Job from the training
CronJob).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest


@dataclass(frozen=True)
class Stack:
    url: str
    grpc: str
    """The sidecar's v2 gRPC port (host:port), behind the same JWT."""
    run_prefix: list[str]
    user: str
    password: str

    def run(self, *argv: str, timeout: float = 900) -> bytes:
        """`argv` beside the stack's store; its stdout. Fails the test when it fails."""
        done = subprocess.run(
            [*self.run_prefix, *argv], capture_output=True, timeout=timeout, check=False
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
        return done.stdout

    def token(self) -> str:
        response = httpx.post(
            f"{self.url}/login", json={"username": self.user, "password": self.password}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["token"])


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Stack:
    option: Callable[[str], str | None] = request.config.getoption
    url, run, grpc = option("--stack-url"), option("--stack-run"), option("--stack-grpc")
    if not url or not run or not grpc:
        pytest.fail("the end-to-end tests need --stack-url, --stack-grpc and --stack-run")
    return Stack(
        url=url.rstrip("/"),
        grpc=grpc,
        run_prefix=shlex.split(run),
        user=option("--stack-user") or "admin",
        password=option("--stack-password") or "123456",
    )


@pytest.fixture(scope="session")
def headers(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token()}"}
