"""BOOTSTRAP_ADMIN_PASSWORD: one `admin` while no users file exists (what a Helm install
generates, since a chart cannot hash), hashed at start and never logged; a users file that
exists, even empty, decides alone, and one that appears later takes over.

In process: real settings, real files, real argon2, the real app over ASGI (no predictor:
/login does not need one)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from agi_credit.auth import InsecureConfiguration, Users, create_app, load_config
from agi_credit.auth.metrics import users_registry
from agi_credit.auth.users import add_user
from agi_credit.settings import AuthSettings
from tests.servers import PASSWORD, SECRET, USER

BOOTSTRAP = "a generated bootstrap password 7Qx"  # what the chart's Secret would hold
ORIGIN = "123456"


@pytest.fixture(autouse=True)
def no_auth_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the settings each test passes: none from the environment of the run."""
    for name in AuthSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("AGI_CREDIT_ACTOR", raising=False)


@pytest.fixture
def opened() -> Iterator[list[Users]]:
    """The users each test loads, their hashing pools stopped at the end."""
    loaded: list[Users] = []
    yield loaded
    for users in loaded:
        users.close()


def settings(**values: Any) -> AuthSettings:
    base: dict[str, Any] = {"env": "prod", "jwt_secret": SECRET}
    return AuthSettings(_env_file=None, **{**base, **values})  # type: ignore[call-arg]


def users_of(chosen: AuthSettings, opened: list[Users]) -> Users:
    users = load_config(chosen).users
    opened.append(users)
    return users


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def logins(chosen: AuthSettings, *attempts: tuple[str, str]) -> list[str | None]:
    """POST /login to the real app for each (user, password): the token's scope, or None."""

    async def run() -> list[str | None]:
        app = create_app(chosen)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as c:
                answers = [
                    await c.post("/login", json={"username": name, "password": password})
                    for name, password in attempts
                ]
        return [_scope(answer) for answer in answers]

    return asyncio.run(run())


def _scope(answer: httpx.Response) -> str | None:
    if answer.status_code == 401:
        return None
    assert answer.status_code == 200, answer.text
    claims = jwt.decode(
        answer.json()["token"], SECRET, algorithms=["HS256"], audience="agi-credit-api"
    )
    return str(claims["scope"])


def test_the_bootstrap_admin_logs_in_with_its_password_never_with_123456_and_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chosen = settings(bootstrap_admin_password=BOOTSTRAP, auth_grpc_port=0, auth_metrics_port=0)
    with caplog.at_level(logging.DEBUG):
        scopes = logins(chosen, ("admin", BOOTSTRAP), ("admin", ORIGIN), (USER, BOOTSTRAP))
    assert scopes == ["admin predict", None, None]
    assert (
        "users: the bootstrap admin from BOOTSTRAP_ADMIN_PASSWORD "
        "(no users file exists: USERS_FILE is not set)"
    ) in messages(caplog)
    assert BOOTSTRAP not in caplog.text
    assert chosen.model_dump(mode="json")["bootstrap_admin_password"] == "**********"


@pytest.mark.parametrize("text", ["", "users: {}\n"], ids=["emptied", "no-users"])
def test_a_users_file_that_exists_decides_alone_even_empty(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture, opened: list[Users]
) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    with caplog.at_level(logging.DEBUG):
        users = users_of(settings(users_file=path, bootstrap_admin_password=BOOTSTRAP), opened)
    assert users.enabled == 0 and not users.authenticate("admin", BOOTSTRAP)
    assert (
        f"users: from USERS_FILE={path} (BOOTSTRAP_ADMIN_PASSWORD is ignored: the file exists)"
        in messages(caplog)
    )
    assert BOOTSTRAP not in caplog.text


def test_a_users_file_with_users_is_used_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, opened: list[Users]
) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, USER, PASSWORD)
    with caplog.at_level(logging.INFO):
        users = users_of(settings(users_file=path), opened)
    assert users.authenticate(USER, PASSWORD) and not users.authenticate("admin", ORIGIN)
    assert f"users: from USERS_FILE={path}" in messages(caplog)


def test_a_users_file_that_appears_later_takes_over_from_the_bootstrap_admin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, opened: list[Users]
) -> None:
    path = tmp_path / "users.yaml"
    with caplog.at_level(logging.DEBUG):
        users = users_of(settings(users_file=path, bootstrap_admin_password=BOOTSTRAP), opened)
        assert users.scopes("admin") == {"admin", "predict"}
        assert users.authenticate("admin", BOOTSTRAP)
        add_user(path, USER, PASSWORD)  # an operator's `agi-credit users add`
        deadline = time.monotonic() + 5  # checked at most once a second
        while users.scopes("admin") and time.monotonic() < deadline:
            time.sleep(0.1)
    assert users.scopes("admin") == frozenset() and not users.authenticate("admin", BOOTSTRAP)
    assert users.scopes(USER) == {"predict"} and users.authenticate(USER, PASSWORD)
    said = messages(caplog)
    assert (
        "users: the bootstrap admin from BOOTSTRAP_ADMIN_PASSWORD "
        f"(no users file exists: USERS_FILE={path} does not exist yet)"
    ) in said
    assert (
        f"users: USERS_FILE={path} appeared and takes over: the bootstrap admin "
        "(BOOTSTRAP_ADMIN_PASSWORD) is dropped"
    ) in said
    assert "users file reloaded: 1 users, removed: admin" in said
    assert BOOTSTRAP not in caplog.text


def test_the_bootstrap_admin_stays_gone_and_its_gauges_tell_each_state(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    users = Users.bootstrap(BOOTSTRAP, source=path, prod=True, check_seconds=0)
    registry = users_registry(users)

    def gauges() -> tuple[float | None, float | None]:
        return (
            registry.get_sample_value("agi_credit_users_file_ok"),
            registry.get_sample_value("agi_credit_users"),
        )

    try:
        assert gauges() == (1.0, 1.0)  # no file: nothing broken, one admin
        path.write_text("users: [not, a, mapping]\n")
        assert gauges() == (0.0, 1.0)  # a broken file keeps who was there
        assert users.authenticate("admin", BOOTSTRAP)
        add_user(tmp_path / "new.yaml", USER, PASSWORD)
        (tmp_path / "new.yaml").replace(path)
        assert gauges() == (1.0, 1.0) and users.scopes("admin") == frozenset()
        path.unlink()  # gone again: the bootstrap admin does not come back
        assert gauges() == (0.0, 1.0) and not users.authenticate("admin", BOOTSTRAP)
    finally:
        users.close()


@pytest.mark.parametrize("with_file", [False, True], ids=["no-file", "file-exists"])
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("fifteen chars!!", "BOOTSTRAP_ADMIN_PASSWORD is shorter than 16 characters"),
        (ORIGIN, "BOOTSTRAP_ADMIN_PASSWORD is the origin's well-known dev password"),
    ],
    ids=["short", "origin"],
)
def test_prod_refuses_a_weak_bootstrap_password(
    tmp_path: Path, password: str, message: str, with_file: bool
) -> None:
    path = tmp_path / "users.yaml"
    if with_file:  # ignored now, but a start that finds the file missing would use it
        add_user(path, USER, PASSWORD)
    chosen = settings(users_file=path, bootstrap_admin_password=password)
    with pytest.raises(InsecureConfiguration) as refused:
        load_config(chosen)
    assert str(refused.value).startswith("refusing to start with ENV=prod: ")
    assert message in str(refused.value) and password not in str(refused.value)


def test_dev_accepts_a_short_bootstrap_password_instead_of_123456(opened: list[Users]) -> None:
    users = users_of(settings(env="dev", bootstrap_admin_password="dev admin"), opened)
    assert users.authenticate("admin", "dev admin") and not users.authenticate("admin", ORIGIN)


@pytest.mark.parametrize("missing", [False, True], ids=["unset", "missing-file"])
def test_prod_without_a_users_file_or_a_bootstrap_password_names_both_ways(
    tmp_path: Path, missing: bool
) -> None:
    path = tmp_path / "users.yaml" if missing else None
    with pytest.raises(InsecureConfiguration) as refused:
        load_config(settings(users_file=path))
    said = str(refused.value)
    where = f"USERS_FILE={path} does not exist" if missing else "USERS_FILE is not set"
    assert said.startswith(f"refusing to start with ENV=prod: {where}")
    assert "`agi-credit users add NAME --file users.yaml`" in said
    assert "or set BOOTSTRAP_ADMIN_PASSWORD (16+ characters)" in said


def test_dev_refuses_a_missing_users_file_without_a_bootstrap_password(tmp_path: Path) -> None:
    with pytest.raises(InsecureConfiguration, match="BOOTSTRAP_ADMIN_PASSWORD"):
        load_config(settings(env="dev", users_file=tmp_path / "users.yaml"))


def test_dev_without_either_keeps_the_origins_admin_123456(
    caplog: pytest.LogCaptureFixture, opened: list[Users]
) -> None:
    with caplog.at_level(logging.INFO):
        users = users_of(settings(env="dev"), opened)
    assert users.authenticate("admin", ORIGIN) and users.scopes("admin") == {"admin", "predict"}
    assert (
        "users: the origin's admin/123456 login works (ENV=dev only): "
        "no USERS_FILE, no BOOTSTRAP_ADMIN_PASSWORD"
    ) in messages(caplog)
