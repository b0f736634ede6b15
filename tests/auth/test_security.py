"""Secure by default: prod refuses weak settings, logins are rate limited, passwords hashed."""

from __future__ import annotations

import os
import stat
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import psutil
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from prometheus_client.parser import text_string_to_metric_families

from agi_credit.auth import Users
from agi_credit.auth.metrics import serve_metrics, users_registry
from agi_credit.auth.tokens import generate_private_key
from agi_credit.auth.users import User, hash_password
from tests.hostile import schemathesis_run
from tests.servers import (
    PASSWORD,
    REPO,
    SECRET,
    USER,
    Server,
    Sidecar,
    free_port,
    make_users_file,
    prod_env,
    running_sidecar,
    users_add,
)


def start_auth(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`agi-credit auth` with a configuration it must refuse (it exits before serving)."""
    mine = ("JWT_SECRET", "USERS_FILE", "BOOTSTRAP_ADMIN_PASSWORD", "ENV")
    clean = {k: v for k, v in os.environ.items() if k not in mine}
    return subprocess.run(
        [sys.executable, "-m", "agi_credit", "auth", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**clean, **env},
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "JWT_SECRET is not set"),
        ({"JWT_SECRET": "short-secret"}, "JWT_SECRET has 12 bytes; it needs at least 32"),
        ({"JWT_SECRET": "agisecretkey"}, "JWT_SECRET is a well-known example value"),
    ],
)
def test_prod_refuses_weak_secrets(users_file: Path, env: dict[str, str], message: str) -> None:
    result = start_auth({"ENV": "prod", "USERS_FILE": str(users_file), **env})
    assert result.returncode == 1
    assert "refusing to start with ENV=prod" in result.stderr and message in result.stderr


def test_prod_refuses_missing_or_plaintext_users(tmp_path: Path) -> None:
    missing = start_auth({"ENV": "prod", "JWT_SECRET": SECRET})
    assert missing.returncode == 1 and "USERS_FILE is not set" in missing.stderr
    assert "or set BOOTSTRAP_ADMIN_PASSWORD" in missing.stderr  # both ways to users
    plaintext = tmp_path / "users.yaml"
    plaintext.write_text(yaml.safe_dump({"users": {"admin": {"password": "123456"}}}))
    refused = start_auth({"ENV": "prod", "JWT_SECRET": SECRET, "USERS_FILE": str(plaintext)})
    assert refused.returncode == 1
    assert "user 'admin'" in refused.stderr and "no argon2id password_hash" in refused.stderr


def test_dev_without_users_accepts_the_origins_admin_with_a_warning(
    predictor: Server, tmp_path: Path
) -> None:
    env = {"ENV": "dev", "JWT_SECRET": "", "USERS_FILE": ""}
    with running_sidecar(predictor, tmp_path / "log", env=env) as dev:
        assert dev.token("admin", "123456")
        logs = dev.logs()
    assert "admin/123456 login works (ENV=dev only)" in logs
    assert "using a random secret" in logs


def test_users_add_stores_an_argon2id_hash_in_a_private_file(tmp_path: Path) -> None:
    path = make_users_file(tmp_path / "users.yaml", {"carol": "carols long password"})
    data = yaml.safe_load(path.read_text())
    stored = data["users"]["carol"]["password_hash"]
    assert stored.startswith("$argon2id$") and "carols long password" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Users.load(path).authenticate("carol", "carols long password")
    make_users_file(path, {"dave": "daves long password"})  # adding keeps the others
    assert set(yaml.safe_load(path.read_text())["users"]) == {"carol", "dave"}


def test_concurrent_users_add_keep_every_user(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    names = [f"user{i}" for i in range(8)]
    with ThreadPoolExecutor(len(names)) as pool:
        results = list(pool.map(lambda name: users_add(path, name, f"{name} password"), names))
    assert [r.returncode for r in results] == [0] * len(names), [r.stderr for r in results]
    assert set(yaml.safe_load(path.read_text())["users"]) == set(names)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = Users.load(path)
    assert users.authenticate("user3", "user3 password")


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("eve", "short", "at least 8 characters"),
        ("../eve", "long enough password", "user names are"),
    ],
)
def test_users_add_refuses_bad_input(
    tmp_path: Path, name: str, password: str, message: str
) -> None:
    result = users_add(tmp_path / "u.yaml", name, password)
    assert result.returncode == 1 and message in result.stderr
    assert not (tmp_path / "u.yaml").exists()


def test_unknown_users_and_wrong_passwords_take_as_long() -> None:
    users = Users({USER: User(hash_password("a password of this user"))})

    def median_seconds(name: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert not users.authenticate(name, "wrong password")
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    known, unknown = median_seconds(USER), median_seconds("nobody")
    assert 0.5 < unknown / known < 2.0


ENUMERATION_BOUND = 1.25
"""Over HTTP, the median login time of an unknown user and of a known user with a wrong
password differ by less than this factor (both run one argon2 check)."""


def test_login_timing_does_not_tell_unknown_users_over_http(sidecar: Sidecar) -> None:
    times: dict[str, list[float]] = {USER: [], "nobody-here": []}
    with httpx.Client(base_url=sidecar.url) as client:
        for _ in range(20):  # interleaved, so that the machine's load hits both alike
            for name, seconds in times.items():
                started = time.perf_counter()
                response = client.post("/login", json={"username": name, "password": "wrong pw"})
                seconds.append(time.perf_counter() - started)
                assert response.status_code == 401
                assert response.json() == {"error": "invalid credentials"}
    known, unknown = (statistics.median(seconds) for seconds in times.values())
    print(f"median login: known user {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms")
    assert 1 / ENUMERATION_BOUND < unknown / known < ENUMERATION_BOUND


def test_brute_force_on_login_gets_429_with_retry_after(
    predictor: Server, users_file: Path, tmp_path: Path
) -> None:
    env = {
        **prod_env(users_file),
        "LOGIN_FAILURES_PER_USER": "3",
        "LOGIN_ATTEMPTS_PER_CLIENT": "8",
        "LOGIN_WINDOW_SECONDS": "30",
    }
    with running_sidecar(predictor, tmp_path / "log", env=env) as limited:
        statuses = [
            httpx.post(f"{limited.url}/login", json={"username": USER, "password": f"guess {i}"})
            for i in range(4)
        ]
        assert [r.status_code for r in statuses] == [401, 401, 401, 429]
        assert int(statuses[-1].headers["retry-after"]) > 0
        # The locked user cannot log in even with the right password, for now…
        locked = httpx.post(f"{limited.url}/login", json={"username": USER, "password": PASSWORD})
        assert locked.status_code == 429
        # …another user still can, until the client itself hits its limit.
        other = [
            httpx.post(
                f"{limited.url}/login", json={"username": "bob", "password": "bobs password 1"}
            )
            for _ in range(4)
        ]
        assert [r.status_code for r in other] == [200, 200, 200, 429]


def test_no_5xx_from_the_sidecars_own_openapi(sidecar: Sidecar, tmp_path: Path) -> None:
    """schemathesis generates requests from /openapi.json; no answer may be a 5xx."""
    generated, passed = schemathesis_run(
        f"{sidecar.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "30",
        "--seed",
        "1",
        "--header",
        f"Authorization: Bearer {sidecar.token()}",
        "--request-timeout",
        "20",
        cwd=tmp_path,
        timeout=600,
    )
    assert generated == passed > 100


def test_rs256_sidecar_publishes_its_key_and_prod_needs_one(
    predictor: Server, users_file: Path, tmp_path: Path
) -> None:
    key = generate_private_key("RS256")
    pem = tmp_path / "jwt.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    refused = start_auth({"ENV": "prod", "JWT_ALGORITHM": "RS256", "USERS_FILE": str(users_file)})
    assert refused.returncode == 1
    assert "JWT_ALGORITHM=RS256 needs JWT_PRIVATE_KEY_PATH" in refused.stderr
    env = {
        "ENV": "prod",
        "JWT_ALGORITHM": "RS256",
        "JWT_PRIVATE_KEY_PATH": str(pem),
        "USERS_FILE": str(users_file),
    }
    with running_sidecar(predictor, tmp_path / "log", env=env) as sidecar:
        token = sidecar.token()
        (published,) = httpx.get(f"{sidecar.url}/.well-known/jwks.json").json()["keys"]
        model_info = httpx.get(
            f"{sidecar.url}/model-info", headers={"Authorization": f"Bearer {token}"}
        )
    assert model_info.status_code == 200
    claims = jwt.decode(
        token,
        jwt.PyJWK(published).key,
        algorithms=["RS256"],
        audience="agi-credit-api",
        issuer="agi-credit",
    )
    assert claims["sub"] == USER and published["alg"] == "RS256"


def test_the_sidecars_metrics_are_on_loopback_only_and_a_taken_port_stops_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    users = Users({USER: User(hash_password("a password of this user"))})
    port = free_port()
    stop = serve_metrics(users_registry(users), port)
    assert stop is not None
    try:
        listening = [
            c.laddr
            for c in psutil.Process().connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
        assert [address.ip for address in listening] == ["127.0.0.1"]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        values = {f.name: f.samples[0].value for f in text_string_to_metric_families(text)}
        # only ours: the chart's relay appends them to the predictor's process_* and python_*
        assert values == {"agi_credit_users_file_ok": 1.0, "agi_credit_users": 1.0}

        with caplog.at_level("ERROR", logger="agi_credit.auth"):
            assert serve_metrics(users_registry(users), port) is None
        assert f"cannot serve the sidecar's metrics on 127.0.0.1:{port}" in caplog.text
    finally:
        stop()
