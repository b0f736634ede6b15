"""Roles: `predict` scores and lists the served versions; `admin` also sees the details
(every version, failed ones with their error, artifact hashes). A token carries the scopes
of its user's roles, and only what the user still has counts."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.auth.echo import bearer
from tests.bodies import APPLICANT
from tests.servers import ADMIN, ADMIN_PASSWORD, SECRET, USER, Sidecar, run_cli


def claims_of(token_headers: dict[str, str]) -> dict[str, object]:
    token = token_headers["Authorization"].removeprefix("Bearer ")
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_a_token_carries_the_scopes_of_its_users_role(sidecar: Sidecar) -> None:
    assert claims_of(bearer(sidecar.url))["scope"] == "predict"
    assert claims_of(bearer(sidecar.url, ADMIN, ADMIN_PASSWORD))["scope"] == "admin predict"


def test_both_roles_predict(sidecar: Sidecar) -> None:
    for headers in (bearer(sidecar.url), bearer(sidecar.url, ADMIN, ADMIN_PASSWORD)):
        response = httpx.post(f"{sidecar.url}/predict", json=APPLICANT, headers=headers)
        assert response.status_code == 200, response.text


def test_only_admins_see_the_details_of_model_info(sidecar: Sidecar) -> None:
    plain = httpx.get(f"{sidecar.url}/model-info", headers=bearer(sidecar.url)).json()
    assert "details" not in plain
    assert set(plain) == {"current_version", "models"}
    assert all("sha256" not in model for model in plain["models"])

    admin = httpx.get(
        f"{sidecar.url}/model-info", headers=bearer(sidecar.url, ADMIN, ADMIN_PASSWORD)
    ).json()
    details = admin["details"]
    assert admin["current_version"] == plain["current_version"]
    assert details["store_current_version"] == plain["current_version"]
    current = details["versions"][plain["current_version"]]
    assert current["status"] == "serving" and len(current["sha256"]) == 64


@pytest.mark.parametrize("path", ["/v2/models/agi-credit", "/v2/models/agi-credit/versions/v1"])
def test_only_admins_see_hashes_and_load_errors_in_the_v2_metadata(
    sidecar: Sidecar, path: str
) -> None:
    plain = httpx.get(f"{sidecar.url}{path}", headers=bearer(sidecar.url))
    admin = httpx.get(f"{sidecar.url}{path}", headers=bearer(sidecar.url, ADMIN, ADMIN_PASSWORD))
    assert plain.status_code == admin.status_code == 200, plain.text
    versions = admin.json()["parameters"]["model_versions"]
    assert all(len(info["sha256"]) == 64 for info in versions.values())
    hidden = plain.json()["parameters"]
    assert "reload_error" not in hidden
    assert set(hidden["model_versions"]) == set(versions)
    for info in hidden["model_versions"].values():
        assert "sha256" not in info and "error" not in info and "store_problem" not in info
    assert plain.json()["inputs"] == admin.json()["inputs"]  # the rest as KServe sent it


def signed(user: str, scope: str) -> dict[str, str]:
    """Headers with a token signed with the sidecar's secret, for `user`, claiming `scope`."""
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": "agi-credit", "aud": "agi-credit-api", "sub": user, "iat": now, "nbf": now,
            "exp": now + 600, "jti": "1" * 32, "scope": scope,
        },
        SECRET,
        algorithm="HS256",
    )  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_scope_claimed_by_a_predict_user_shows_nothing_more(sidecar: Sidecar) -> None:
    """Scopes are what the token says *and* what the user's current roles allow."""
    response = httpx.get(f"{sidecar.url}/model-info", headers=signed(USER, "admin predict"))
    assert response.status_code == 200
    assert "details" not in response.json()


def test_a_token_without_the_predict_scope_is_forbidden(sidecar: Sidecar) -> None:
    response = httpx.post(f"{sidecar.url}/predict", json=APPLICANT, headers=signed(ADMIN, "admin"))
    assert response.status_code == 403
    assert response.json() == {"error": "this needs the predict role"}


def test_users_add_refuses_an_unknown_role(tmp_path: object) -> None:
    result = run_cli(
        "users", "add", "eve", "--file", f"{tmp_path}/u.yaml", "--role", "root",
        "--password-stdin", stdin="a long enough password\n",
    )  # fmt: skip
    assert result.returncode != 0
    assert "root" in result.stderr and "predict" in result.stderr
