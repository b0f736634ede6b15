"""Limits that hold under pressure: login attempts counted before the password is checked,
request bodies cut off at their size limit, a login limiter of bounded memory, a bounded pool
of password checks."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
from argon2 import PasswordHasher

from agi_credit.auth import Users
from agi_credit.auth.ratelimit import SlidingWindow
from agi_credit.auth.users import User
from tests.auth.echo import Echo, bearer, sidecar_in_front_of
from tests.bodies import APPLICANT, v2_body
from tests.servers import PASSWORD, USER, prod_env

FAILURES_PER_USER = 5
MAX_REQUEST_BYTES = 16 * 1024
TOO_LARGE = {"error": "request body too large"}


@pytest.fixture(scope="module")
def limited(
    echo: Echo, users_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A sidecar with 5 failed logins per user and 16 KiB request bodies."""
    log = tmp_path_factory.mktemp("limited") / "sidecar.log"
    env = prod_env(
        users_file,
        LOGIN_FAILURES_PER_USER=str(FAILURES_PER_USER),
        LOGIN_ATTEMPTS_PER_CLIENT="1000",
        MAX_REQUEST_BYTES=str(MAX_REQUEST_BYTES),
    )
    with sidecar_in_front_of(echo, log, env=env) as url:
        yield url


async def _wrong_passwords(url: str, user: str, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.post(f"{url}/login", json={"username": user, "password": f"guess {i}"})
                for i in range(count)
            )
        )
    return [r.status_code for r in responses]


def test_a_burst_of_wrong_passwords_gets_no_more_401s_than_the_limit(limited: str) -> None:
    statuses = asyncio.run(_wrong_passwords(limited, "bob", 30))
    assert statuses.count(401) <= FAILURES_PER_USER
    assert statuses.count(401) + statuses.count(429) == 30


def test_a_right_password_forgives_the_failures_counted(limited: str) -> None:
    for i in range(FAILURES_PER_USER - 1):
        wrong = httpx.post(f"{limited}/login", json={"username": USER, "password": f"x{i}"})
        assert wrong.status_code == 401
    assert bearer(limited)
    statuses = asyncio.run(_wrong_passwords(limited, USER, FAILURES_PER_USER - 1))
    assert statuses == [401] * (FAILURES_PER_USER - 1)
    assert bearer(limited)


def _login_body(username_length: int) -> bytes:
    return b'{"username": "' + b"a" * username_length + b'", "password": "wrong password"}'


def test_login_bodies_over_4_kib_are_refused(limited: str) -> None:
    json = {"content-type": "application/json"}
    fits = httpx.post(f"{limited}/login", content=_login_body(3000), headers=json)
    assert fits.status_code == 401
    announced = httpx.post(f"{limited}/login", content=_login_body(5000), headers=json)
    assert announced.status_code == 413 and announced.json() == TOO_LARGE
    streamed = httpx.post(
        f"{limited}/login", content=iter([_login_body(1000)] * 5), headers=json
    )  # chunked: no Content-Length, counted as it arrives
    assert streamed.status_code == 413 and streamed.json() == TOO_LARGE


def test_predict_and_pass_through_bodies_over_max_request_bytes_are_refused(
    limited: str, echo: Echo
) -> None:
    headers = bearer(limited)
    small = httpx.post(f"{limited}/predict", json=[APPLICANT] * 10, headers=headers)
    assert small.status_code == 200, small.text
    echo.received.clear()
    for path, body in (
        ("/predict", [APPLICANT] * 1000),
        ("/v2/models/agi-credit/infer", v2_body([APPLICANT] * 1000)),
    ):
        response = httpx.post(f"{limited}{path}", json=body, headers=headers)
        assert response.status_code == 413 and response.json() == TOO_LARGE
    assert echo.received == []
    chunks = iter([b'{"inputs": [', *([b" " * 1024] * 32), b"]}"])
    streamed = httpx.post(
        f"{limited}/v2/models/agi-credit/infer",
        content=chunks,
        headers={**headers, "content-type": "application/json"},
    )
    assert streamed.status_code == 413 and streamed.json() == TOO_LARGE


def test_an_announced_oversized_body_is_refused_before_it_is_sent(limited: str) -> None:
    """Content-Length says 1 GB and no byte of it follows: the answer comes at once."""
    host, port = limited.removeprefix("http://").split(":")
    authorization = bearer(limited)["Authorization"].encode()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: " + authorization + b"\r\nContent-Length: 1000000000\r\n\r\n"
        )
        status_line = connection.recv(4096).split(b"\r\n")[0]
    assert status_line.split()[1] == b"413"


def test_the_login_limiter_never_holds_more_keys_than_its_cap() -> None:
    window = SlidingWindow(limit=5, window=60, max_keys=100)
    for i in range(10_000):
        assert window.acquire(f"203.0.113.{i}", now=1000 + i / 1000) is None
    assert len(window) <= 100


def test_the_limiter_forgets_the_least_recently_active_key_first() -> None:
    window = SlidingWindow(limit=2, window=60, max_keys=2)
    window.acquire("old", now=0)
    window.acquire("busy", now=1)
    window.acquire("busy", now=2)
    window.acquire("new", now=3)  # pushes out "old", not "busy"
    assert window.acquire("busy", now=4) == 57  # still counted: 2 events in the window
    assert window.acquire("old", now=5) is None  # forgotten, starts again


class CountingHasher(PasswordHasher):
    """argon2's own hasher, counting the checks that run at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.running = self.peak = 0
        self.lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return super().verify(hash, password)
        finally:
            with self.lock:
                self.running -= 1


def test_at_most_hash_workers_password_checks_run_at_once() -> None:
    hasher = CountingHasher()
    users = Users({USER: User(hasher.hash(PASSWORD))}, hash_workers=2, hasher=hasher)

    async def logins() -> list[bool]:
        checks = (users.check(USER, PASSWORD if i % 2 else "wrong password") for i in range(12))
        return list(await asyncio.gather(*checks))

    try:
        assert asyncio.run(logins()) == [i % 2 == 1 for i in range(12)]
    finally:
        users.close()
    assert hasher.peak == 2
