"""What reaches the predictor: only the allow-listed KServe routes, and only the identity
headers the sidecar sets itself. The upstream here is an echo server that records every
request, so the tests see exactly what the predictor would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.echo import Echo, bearer, sidecar_in_front_of
from tests.bodies import APPLICANT, v1_body, v2_body
from tests.servers import USER, prod_env


@pytest.fixture(scope="module")
def front(echo: Echo, users_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a sidecar whose upstream is the echo server."""
    log = tmp_path_factory.mktemp("front") / "sidecar.log"
    env = prod_env(users_file)
    with sidecar_in_front_of(echo, log, env=env) as url:
        yield url


@pytest.fixture(scope="module")
def token(front: str) -> dict[str, str]:
    return bearer(front)


SPOOFED = {
    "X-Auth-User": "root",
    "X-Auth-Roles": "admin",
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Prefix": "/admin",
    "Forwarded": "for=203.0.113.7;proto=https",
    "X-Real-IP": "203.0.113.7",
    "Keep-Alive": "timeout=5",
    "X-Hop-Secret": "named by Connection",
    "Connection": "keep-alive, X-Hop-Secret",
    "X-Trace": "passes",
}


@pytest.mark.parametrize(
    ("method", "path", "body", "upstream_path"),
    [
        ("POST", "/predict", APPLICANT, "/v2/models/agi-credit/infer"),
        ("POST", "/predict/v1", APPLICANT, "/v2/models/agi-credit/versions/v1/infer"),
        ("GET", "/model-info", None, "/v2/models/agi-credit"),
        ("GET", "/v2/models/agi-credit", None, "/v2/models/agi-credit"),
        ("POST", "/v2/models/agi-credit/infer", v2_body(), "/v2/models/agi-credit/infer"),
        ("POST", "/v1/models/agi-credit:predict", v1_body(), "/v1/models/agi-credit:predict"),
    ],
)
def test_the_predictor_sees_only_the_identity_the_sidecar_sets(
    front: str,
    token: dict[str, str],
    echo: Echo,
    method: str,
    path: str,
    body: object,
    upstream_path: str,
) -> None:
    echo.received.clear()
    response = httpx.request(method, f"{front}{path}", json=body, headers={**token, **SPOOFED})
    assert response.status_code == 200, response.text
    (seen,) = echo.reached(upstream_path)
    assert seen.values("x-auth-user") == [USER]
    assert {n for n in seen.names() if n.startswith("x-auth-")} == {"x-auth-user"}
    assert seen.values("x-forwarded-for") == ["127.0.0.1"]
    assert seen.values("x-forwarded-proto") == ["http"]
    assert seen.values("x-forwarded-host") == [front.removeprefix("http://")]
    assert {n for n in seen.names() if n.startswith("x-forwarded-")} == {
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
    }
    assert not seen.names() & {"forwarded", "x-real-ip", "keep-alive", "x-hop-secret"}
    assert "authorization" not in seen.names()  # the token stays with the sidecar
    assert len(seen.values("x-request-id")) == 1


def test_pass_through_keeps_the_clients_other_headers(
    front: str, token: dict[str, str], echo: Echo
) -> None:
    echo.received.clear()
    httpx.get(f"{front}/v2/models/agi-credit", headers={**token, **SPOOFED})
    (seen,) = echo.reached("/v2/models/agi-credit")
    assert seen.values("x-trace") == ["passes"]


def test_model_info_reads_the_predictors_metadata(front: str, token: dict[str, str]) -> None:
    info = httpx.get(f"{front}/model-info", headers=token).json()
    assert info == {
        "current_version": "v1",
        "models": [
            {
                "version": "v1",
                "created_at": "2026-11-26 10:00:00",
                "features": list(APPLICANT),
                "engine": "compiled",
            }
        ],
    }


REFUSED = [
    ("POST", "/v2/repository/models/agi-credit/unload"),
    ("POST", "/v2/repository/models/agi-credit/load"),
    ("POST", "/v2/repository/index"),
    ("GET", "/v2/models"),
    ("GET", "/v1/models"),
    ("GET", "/metrics"),
    ("POST", "/v2/models/agi-credit/generate"),
    ("POST", "/v2/repository%2Fmodels%2Fagi-credit%2Funload"),
    ("POST", "/v2/models/agi-credit/versions/v1/infer/../../../../repository/index"),
    ("POST", "/v2/models/agi-credit/infer/extra"),
]


@pytest.mark.parametrize(("method", "path"), REFUSED)
def test_routes_off_the_allow_list_never_reach_the_predictor(
    front: str, token: dict[str, str], echo: Echo, method: str, path: str
) -> None:
    echo.received.clear()
    response = httpx.request(method, f"{front}{path}", headers=token)
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}
    assert echo.received == []


ALLOWED = [
    ("GET", "/v2"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2/models/agi-credit"),
    ("GET", "/v2/models/agi-credit/ready"),
    ("POST", "/v2/models/agi-credit/infer"),
    ("GET", "/v2/models/agi-credit/versions/v1"),
    ("GET", "/v2/models/agi-credit/versions/v1/ready"),
    ("POST", "/v2/models/agi-credit/versions/v1/infer"),
    ("GET", "/v1/models/agi-credit"),
    ("POST", "/v1/models/agi-credit:predict"),
    ("POST", "/v1/models/agi-credit:explain"),
    ("GET", "/v2/models/agi%2Dcredit?x=1"),
]


@pytest.mark.parametrize(("method", "path"), ALLOWED)
def test_allowed_routes_reach_the_predictor_as_sent(
    front: str, token: dict[str, str], echo: Echo, method: str, path: str
) -> None:
    echo.received.clear()
    body = v2_body() if path.endswith("/infer") else v1_body() if method == "POST" else None
    response = httpx.request(method, f"{front}{path}", json=body, headers=token)
    assert response.status_code == 200, response.text
    assert [(r.method, r.path) for r in echo.received] == [(method, path)]
