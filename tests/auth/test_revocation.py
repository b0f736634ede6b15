"""Revocation: the sidecar re-reads its users file when it changes, so a disabled or removed
user's tokens stop working within seconds, without a restart, and a file without users
locks everyone out. A file it cannot use is logged at ERROR at each check and shown by
`agi_credit_users_file_ok` 0; the users it had stay, less those the file removes or
disables. Tokens last 15 minutes by default, and prod refuses password hashes weaker than
the sidecar's own."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from argon2 import PasswordHasher
from prometheus_client.parser import text_string_to_metric_families

from agi_credit.auth.errors import UnusableUsersFile
from agi_credit.auth.users import Users, hash_password, read_users_file
from agi_credit.settings import AuthSettings
from tests.auth.echo import Echo, bearer, sidecar_in_front_of
from tests.servers import (
    PASSWORD,
    SECRET,
    USER,
    free_port,
    json_records,
    make_users_file,
    prod_env,
    run_cli,
)

BOB, BOB_PASSWORD = "bob", "bobs password 1"
CAROL, CAROL_PASSWORD = "carol", "carols password 1"
REVOKED_WITHIN = 5.0  # seconds: the file is checked every second
BROKEN = "users: [this is not a mapping\n"


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return make_users_file(tmp_path / "users.yaml", {USER: PASSWORD, BOB: BOB_PASSWORD})


@pytest.fixture
def front(echo: Echo, users_file: Path, tmp_path: Path) -> Iterator[str]:
    env = prod_env(users_file)
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


@dataclass(frozen=True)
class Watched:
    """A prod sidecar in front of the echo upstream, with its log and its loopback metrics."""

    url: str
    log_path: Path
    metrics_port: int

    def metric(self, name: str) -> float:
        """The value of gauge `name` on the sidecar's metrics port."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics").text
        families = {family.name: family for family in text_string_to_metric_families(text)}
        assert all(name.startswith("agi_credit_") for name in families), list(families)
        return families[name].samples[0].value

    def records(self) -> list[dict[str, Any]]:
        return json_records(self.log_path.read_text(errors="replace"))

    def failures(self) -> list[dict[str, Any]]:
        """The log's records of checks that could not use the users file."""
        return [r for r in self.records() if r.get("event") == "users_reload_failed"]


@contextmanager
def watched(echo: Echo, users_file: Path, tmp_path: Path) -> Iterator[Watched]:
    env = prod_env(users_file)
    log_path, metrics_port = tmp_path / "watched.log", free_port()
    with sidecar_in_front_of(echo, log_path, env=env, metrics_port=metrics_port) as url:
        yield Watched(url, log_path, metrics_port)


@pytest.fixture
def lone_user_file(tmp_path: Path) -> Path:
    return make_users_file(tmp_path / "lone.yaml", {USER: PASSWORD})


EMPTIED = {"users: {}": "users: {}\n", "no users key": "{}\n", "an empty file": ""}


@pytest.mark.parametrize("emptied", EMPTIED.values(), ids=EMPTIED.keys())
def test_emptying_the_users_file_locks_the_last_user_out(
    echo: Echo, lone_user_file: Path, tmp_path: Path, emptied: str
) -> None:
    with watched(echo, lone_user_file, tmp_path) as front:
        headers = bearer(front.url)
        assert status_of(front.url, headers) == 200

        lone_user_file.write_text(emptied)
        eventually(lambda: status_of(front.url, headers) == 401)
        response = httpx.get(f"{front.url}/model-info", headers=headers)
        assert response.json() == {"error": "token revoked"}
        assert login_status(front.url, USER, PASSWORD) == 401
        assert front.metric("agi_credit_users") == 0
        assert front.metric("agi_credit_users_file_ok") == 1  # a valid state, not a fault
        assert not front.failures()
        said = [r for r in front.records() if "no one can log in" in r["message"]]
        assert [r["level"] for r in said] == ["WARNING"]


def test_a_broken_users_file_keeps_the_users_says_so_at_each_check_and_recovers(
    echo: Echo, lone_user_file: Path, tmp_path: Path
) -> None:
    good = lone_user_file.read_text()
    with watched(echo, lone_user_file, tmp_path) as front:
        headers = bearer(front.url)

        lone_user_file.write_text(BROKEN)
        # checked as requests come, at most once a second: an ERROR at each check
        eventually(lambda: status_of(front.url, headers) == 200 and len(front.failures()) >= 2)
        assert {r["level"] for r in front.failures()} == {"ERROR"}
        assert "keeping the 1 users loaded before" in front.failures()[-1]["message"]
        assert front.metric("agi_credit_users_file_ok") == 0
        assert front.metric("agi_credit_users") == 1
        assert login_status(front.url, USER, PASSWORD) == 200

        lone_user_file.write_text(good)
        eventually(
            lambda: (
                status_of(front.url, headers) == 200
                and front.metric("agi_credit_users_file_ok") == 1
            )
        )
        failures = len(front.failures())
        for _ in range(3):  # fixed: the next checks are quiet
            time.sleep(1.1)
            assert status_of(front.url, headers) == 200
        assert len(front.failures()) == failures
    logs = front.log_path.read_text()
    assert PASSWORD not in logs and headers["Authorization"].split()[1] not in logs


def test_an_idle_sidecars_gauge_sees_a_broken_file(
    echo: Echo, lone_user_file: Path, tmp_path: Path
) -> None:
    """No request comes: the scrape itself checks the file, so the alert still fires."""
    with watched(echo, lone_user_file, tmp_path) as front:
        assert front.metric("agi_credit_users_file_ok") == 1
        lone_user_file.write_text(BROKEN)
        eventually(lambda: front.metric("agi_credit_users_file_ok") == 0)
        assert [r["level"] for r in front.failures()][:1] == ["ERROR"]


def test_a_partly_invalid_file_never_undoes_a_removal_or_a_disable(
    echo: Echo, tmp_path: Path
) -> None:
    passwords = {USER: PASSWORD, BOB: BOB_PASSWORD, CAROL: CAROL_PASSWORD}
    users_file = make_users_file(tmp_path / "users.yaml", passwords)
    with watched(echo, users_file, tmp_path) as front:
        tokens = {name: bearer(front.url, name, password) for name, password in passwords.items()}
        data = yaml.safe_load(users_file.read_text())
        del data["users"][BOB]
        data["users"][CAROL]["disabled"] = True
        data["users"][USER]["roles"] = ["superuser"]  # a typo: the file cannot be used
        users_file.write_text(yaml.safe_dump(data))

        eventually(
            lambda: (
                status_of(front.url, tokens[BOB]) == 401
                and status_of(front.url, tokens[CAROL]) == 401
            )
        )
        assert status_of(front.url, tokens[USER]) == 200  # as before the typo
        assert login_status(front.url, BOB, BOB_PASSWORD) == 401
        assert login_status(front.url, CAROL, CAROL_PASSWORD) == 401
        assert front.metric("agi_credit_users_file_ok") == 0
        assert front.metric("agi_credit_users") == 1
        failure = front.failures()[-1]["message"]
        assert f"user '{USER}'" in failure and "roles must be" in failure
        assert f"less {BOB}, {CAROL} (removed or disabled in it)" in failure


class SecretVolume:
    """A directory laid out as the kubelet mounts a Secret: `users.yaml ->
    ..data/users.yaml`, `..data -> ..<version>`, `..data` swapped atomically on update."""

    def __init__(self, root: Path, content: str) -> None:
        self.root, self.versions = root, 0
        root.mkdir()
        self.update(content)
        (root / "users.yaml").symlink_to("..data/users.yaml")

    @property
    def users_file(self) -> Path:
        return self.root / "users.yaml"

    def update(self, content: str) -> None:
        self.versions += 1
        version = self.root / f"..2026_11_26_10_00_0{self.versions}.123456789"
        version.mkdir()
        (version / "users.yaml").write_text(content)
        previous = (self.root / "..data").resolve() if self.versions > 1 else None
        (self.root / "..data_tmp").symlink_to(version.name)
        os.replace(self.root / "..data_tmp", self.root / "..data")
        if previous is not None:
            shutil.rmtree(previous)


def test_a_secret_volume_swapped_to_a_broken_then_an_empty_users_file(
    echo: Echo, lone_user_file: Path, tmp_path: Path
) -> None:
    secret = SecretVolume(tmp_path / "secret", lone_user_file.read_text())
    with watched(echo, secret.users_file, tmp_path) as front:
        headers = bearer(front.url)

        secret.update(BROKEN)  # kept, and said at each check
        eventually(lambda: status_of(front.url, headers) == 200 and len(front.failures()) >= 2)
        assert {r["level"] for r in front.failures()} == {"ERROR"}
        assert front.metric("agi_credit_users_file_ok") == 0

        secret.update("users: {}\n")  # everyone out
        eventually(lambda: status_of(front.url, headers) == 401)
        assert login_status(front.url, USER, PASSWORD) == 401
        assert front.metric("agi_credit_users_file_ok") == 1
        assert front.metric("agi_credit_users") == 0


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
    env = prod_env(users)
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


# --- the same rules on `Users` itself, without a process -----------------------------------


@pytest.fixture(scope="module")
def stored_hash() -> str:
    return hash_password(PASSWORD)


def users_text(entries: dict[str, dict[str, Any]]) -> str:
    return yaml.safe_dump({"users": entries})


@pytest.mark.parametrize("text", ["users: {}\n", "users:\n", "{}\n", "# everyone removed\n", ""])
def test_a_file_without_users_is_valid_and_lets_no_one_in(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    assert read_users_file(path, prod=True) == {}
    with caplog.at_level(logging.WARNING, logger="agi_credit.auth"):
        users = Users.load(path, prod=True)
    assert users.enabled == 0 and users.file_ok
    assert users.scopes(USER) == frozenset() and not users.authenticate(USER, PASSWORD)
    said = [r.levelname for r in caplog.records if "no one can log in" in r.getMessage()]
    assert said == ["WARNING"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BROKEN, "is not valid YAML at line 2"),
        ("- a list\n", "expected a `users:` mapping"),
        ("users: [alice, bob]\n", "`users:` is not a mapping"),
        ("users:\n  eve: {password: plain}\n", "user 'eve' .* has no argon2id password_hash"),
    ],
)
def test_a_file_that_cannot_be_used_says_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    with pytest.raises(UnusableUsersFile, match=message):
        read_users_file(path, prod=True)
    with pytest.raises(UnusableUsersFile, match="cannot read the users file"):
        read_users_file(tmp_path / "missing.yaml", prod=True)


def test_invalid_yaml_is_reported_by_position_not_by_its_text(
    tmp_path: Path, stored_hash: str
) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(f"users:\n  {USER}: {{password_hash: '{stored_hash}', roles: [predict}}\n")
    with pytest.raises(UnusableUsersFile) as refused:
        read_users_file(path, prod=True)
    assert "line 2" in str(refused.value)
    assert stored_hash[-16:] not in str(refused.value)  # YAML would quote the line's end


def test_an_invalid_entry_names_the_users_still_listed_and_enabled(
    tmp_path: Path, stored_hash: str
) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(
        users_text(
            {
                USER: {"password_hash": stored_hash, "roles": ["superuser"]},
                BOB: {"password_hash": stored_hash, "disabled": True},
                CAROL: {"password_hash": "plain"},
            }
        )
    )
    with pytest.raises(UnusableUsersFile) as refused:
        read_users_file(path, prod=True)
    assert refused.value.still_enabled == frozenset({USER, CAROL})
    assert f"user '{USER}'" in str(refused.value) and f"user '{CAROL}'" in str(refused.value)


def test_refresh_keeps_the_users_of_an_unusable_file_less_those_it_removes_or_disables(
    tmp_path: Path, stored_hash: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "users.yaml"
    entry = {"password_hash": stored_hash}
    path.write_text(users_text({USER: entry, BOB: entry, CAROL: entry}))
    users = Users.load(path, prod=True, check_seconds=0)

    with caplog.at_level(logging.ERROR, logger="agi_credit.auth"):
        path.write_text(BROKEN)
        users.refresh()
        users.refresh()  # unchanged, still unusable: said again
        assert [r.levelname for r in caplog.records] == ["ERROR", "ERROR"]
        assert not users.file_ok and users.enabled == 3

        broken_entry = {"password_hash": stored_hash, "roles": ["superuser"]}
        path.write_text(users_text({USER: broken_entry, CAROL: {**entry, "disabled": True}}))
        users.refresh()
        assert not users.file_ok
        assert users.scopes(USER) == {"predict"}  # kept
        assert users.scopes(BOB) == users.scopes(CAROL) == frozenset()  # removed, disabled

        path.write_text(users_text({USER: entry, BOB: entry}))
        caplog.clear()
        users.refresh()
        users.refresh()
    assert users.file_ok and users.enabled == 2 and not caplog.records
