"""Behind an ingress: with TRUSTED_PROXIES, the client a login attempt is counted for (and
the access log names) is the last X-Forwarded-For hop that is not a trusted proxy. Without
it the header is ignored, since any client can write one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.echo import Echo, sidecar_in_front_of
from tests.servers import prod_env

ATTEMPTS_PER_CLIENT = 3


@pytest.fixture(params=["ignored", "trusted"])
def front(
    request: pytest.FixtureRequest, echo: Echo, users_file: Path, tmp_path: Path
) -> Iterator[tuple[str, str, Path]]:
    env = {
        **prod_env(users_file),
        "LOGIN_ATTEMPTS_PER_CLIENT": str(ATTEMPTS_PER_CLIENT),
        "LOGIN_FAILURES_PER_USER": "1000",
    }
    if request.param == "trusted":
        env["TRUSTED_PROXIES"] = "10.0.0.0/8, 127.0.0.1/32"  # the test connects from 127.0.0.1
    log = tmp_path / "sidecar.log"
    with sidecar_in_front_of(echo, log, env=env) as url:
        yield url, request.param, log


def attempt(url: str, forwarded_for: str) -> int:
    response = httpx.post(
        f"{url}/login",
        json={"username": "nobody", "password": "wrong password"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status_code


def logged_clients(log: Path) -> list[str]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line["client"] for line in lines if line.get("event") == "access"]


def test_each_client_behind_the_proxy_has_its_own_login_limit(
    front: tuple[str, str, Path],
) -> None:
    url, mode, log = front
    first = [attempt(url, "203.0.113.7, 10.1.2.3") for _ in range(ATTEMPTS_PER_CLIENT + 1)]
    second = [attempt(url, "198.51.100.9") for _ in range(ATTEMPTS_PER_CLIENT)]
    if mode == "trusted":
        # 10.1.2.3 is a trusted proxy: the client is 203.0.113.7, then 198.51.100.9
        assert first == [401] * ATTEMPTS_PER_CLIENT + [429]
        assert second == [401] * ATTEMPTS_PER_CLIENT
        assert {"203.0.113.7", "198.51.100.9"} <= set(logged_clients(log))
    else:
        # the header is ignored: every attempt is 127.0.0.1's
        assert first == [401] * ATTEMPTS_PER_CLIENT + [429]
        assert second == [429] * ATTEMPTS_PER_CLIENT
        assert set(logged_clients(log)) == {"127.0.0.1"}


def test_a_client_cannot_choose_its_address_by_prepending_hops(
    front: tuple[str, str, Path],
) -> None:
    url, mode, _ = front
    statuses = [attempt(url, f"192.0.2.{i}, 198.51.100.77") for i in range(ATTEMPTS_PER_CLIENT + 1)]
    # the hop the proxy appended (198.51.100.77) counts, not the ones the client wrote
    assert statuses == [401] * ATTEMPTS_PER_CLIENT + [429], mode
