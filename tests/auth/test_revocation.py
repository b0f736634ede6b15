"""Revocation: the sidecar re-reads its users file when it changes, so a disabled or removed
user's tokens stop working within seconds, without a restart; a file it cannot use is
logged and the users it had stay. Tokens last 15 minutes by default, and prod refuses
password hashes weaker than the sidecar's own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
import yaml
from argon2 import PasswordHasher

from agi_credit.settings import AuthSettings
from tests.auth.echo import Echo, bearer, sidecar_in_front_of
from tests.servers import PASSWORD, SECRET, USER, make_users_file, run_cli

BOB, BOB_PASSWORD = "bob", "bobs password 1"
REVOKED_WITHIN = 5.0  # seconds: the file is checked every second


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return make_users_file(tmp_path / "users.yaml", {USER: PASSWORD, BOB: BOB_PASSWORD})


@pytest.fixture
def front(echo: Echo, users_file: Path, tmp_path: Path) -> Iterator[str]:
    env = {"ENV": "prod", "JWT_SECRET": SECRET, "USERS_FILE": str(users_file)}
    with sidecar_in_front_of(echo, tmp_path / "sidecar.log", env=env) as url:
        yield url


def status_of(url: str, headers: dict[str, str]) -> int:
    return httpx.get(f"{url}/model-info", headers=headers).status_code


def eventually(condition: Callable[[], bool], within: float = REVOKED_WITHIN) -> float:
    """Seconds until `condition()` holds; fails after `within`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, f"not within {within} s"
        time.sleep(0.1)
    return time.monotonic() - started


def login_status(url: str, user: str, password: str) -> int:
    return httpx.post(f"{url}/login", json={"username": user, "password": password}).status_code


def test_a_disabled_users_token_stops_working_within_seconds(front: str, users_file: Path) -> None:
    headers = bearer(front, BOB, BOB_PASSWORD)
    others = bearer(front)
    assert status_of(front, headers) == 200

    result = run_cli("users", "disable", BOB, "--file", users_file)
    assert result.returncode == 0, result.stderr
    took = eventually(lambda: status_of(front, headers) == 401)
    response = httpx.get(f"{front}/model-info", headers=headers)
    assert response.json() == {"error": "token revoked"}
    assert login_status(front, BOB, BOB_PASSWORD) == 401
    assert status_of(front, others) == 200  # nobody else is affected
    print(f"revoked in {took:.2f} s")

    assert run_cli("users", "enable", BOB, "--file", users_file).returncode == 0
    eventually(lambda: status_of(front, headers) == 200)
    assert login_status(front, BOB, BOB_PASSWORD) == 200


def test_a_removed_users_token_stops_working(front: str, users_file: Path) -> None:
    headers = bearer(front, BOB, BOB_PASSWORD)
    data = yaml.safe_load(users_file.read_text())
    del data["users"][BOB]
    replacement = users_file.with_name("new.yaml")
    replacement.write_text(yaml.safe_dump(data))
    replacement.replace(users_file)  # as a Secret volume swaps its files
    eventually(lambda: status_of(front, headers) == 401)
    assert status_of(front, bearer(front)) == 200


def test_a_broken_users_file_keeps_the_users_and_says_so(
    front: str, users_file: Path, tmp_path: Path
) -> None:
    headers = bearer(front)
    users_file.write_text("users: [this is not a mapping\n")
    log = tmp_path / "sidecar.log"
    # the file is looked at when requests come, at most once a second
    eventually(lambda: status_of(front, headers) == 200 and "cannot be used" in log.read_text())
    assert login_status(front, BOB, BOB_PASSWORD) == 200


def test_tokens_last_15_minutes_by_default(front: str) -> None:
    assert AuthSettings().token_ttl_seconds == 900
    token = bearer(front)["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900


def test_users_disable_names_an_unknown_user(users_file: Path) -> None:
    result = run_cli("users", "disable", "nobody", "--file", users_file)
    assert result.returncode != 0 and "no user 'nobody'" in result.stderr


def weak_users_file(path: Path) -> Path:
    weak = PasswordHasher(memory_cost=1024, time_cost=1).hash(PASSWORD)
    path.write_text(yaml.safe_dump({"users": {USER: {"password_hash": weak}}}))
    return path


def test_prod_refuses_hashes_weaker_than_its_own(tmp_path: Path, echo: Echo) -> None:
    users = weak_users_file(tmp_path / "weak.yaml")
    env = {"ENV": "prod", "JWT_SECRET": SECRET, "USERS_FILE": str(users)}
    result = run_cli("auth", "--upstream", echo.url, "--port", "9", env=env, timeout=60)
    assert result.returncode != 0
    assert "weaker than this sidecar's" in result.stderr
    assert "memory_cost 1024 < 65536" in result.stderr and "time_cost 1 < 3" in result.stderr


def test_dev_accepts_a_weak_hash_with_a_warning(tmp_path: Path, echo: Echo) -> None:
    users = weak_users_file(tmp_path / "weak.yaml")
    env = {"ENV": "dev", "JWT_SECRET": SECRET, "USERS_FILE": str(users)}
    with sidecar_in_front_of(echo, tmp_path / "dev.log", env=env) as url:
        assert status_of(url, bearer(url)) == 200
    assert "accepted with ENV=dev" in (tmp_path / "dev.log").read_text()
