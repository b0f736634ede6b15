"""`helm install` with no values: a prod install that generates its JWT secret (or key pair)
and an `admin` password into `<fullname>-auth`, as Grafana and the bitnami charts do.
`lookup` keeps them across upgrades on a cluster (make kind-e2e checks that); `helm
template`, which has no cluster, generates new ones at each render."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Literal

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agi_credit.auth.tokens import load_private_key
from tests.chart.chart import Rendered, env_of, predictor_pod, sidecar_of


def secret_data(rendered: Rendered) -> dict[str, str]:
    secret = rendered.one("Secret")
    assert secret["metadata"]["name"] == "credit-agi-credit-auth"
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_no_values_is_a_prod_install_with_a_generated_secret_and_admin() -> None:
    rendered = Rendered.of("no-values", {})
    data = secret_data(rendered)
    assert set(data) == {"JWT_SECRET", "admin-password"}
    assert len(data["JWT_SECRET"]) == 64 and data["JWT_SECRET"].isalnum()
    assert len(data["admin-password"]) == 24 and data["admin-password"].isalnum()
    env = env_of(sidecar_of(predictor_pod(rendered)))
    assert env["ENV"] == "prod"
    secret = {"secretKeyRef": {"name": "credit-agi-credit-auth", "key": "JWT_SECRET"}}
    assert env["JWT_SECRET"] == secret
    admin = {"secretKeyRef": {"name": "credit-agi-credit-auth", "key": "admin-password"}}
    assert env["BOOTSTRAP_ADMIN_PASSWORD"] == admin
    assert "USERS_FILE" not in env  # no users file: the bootstrap admin applies
    reveal = "get secret credit-agi-credit-auth -o jsonpath='{.data.admin-password}' | base64 -d"
    assert reveal in rendered.notes
    # No cluster to look the Secret up: each render generates anew.
    assert secret_data(Rendered.of("again", {})) != data


@pytest.mark.parametrize(
    ("algorithm", "key_type"),
    [("RS256", rsa.RSAPrivateKey), ("ES256", ec.EllipticCurvePrivateKey)],
)
def test_an_asymmetric_algorithm_gets_a_generated_key_pair_the_sidecar_loads(
    algorithm: Literal["RS256", "ES256"], key_type: type, tmp_path: Path
) -> None:
    rendered = Rendered.of(algorithm, {"auth": {"jwt": {"algorithm": algorithm}}})
    data = secret_data(rendered)
    assert set(data) == {"jwt-private-key.pem", "admin-password"}
    pem = tmp_path / "jwt-private-key.pem"
    pem.write_text(data["jwt-private-key.pem"])
    # The sidecar's own loader: the kind (RSA >= 2048 bits, or P-256) its algorithm needs.
    assert isinstance(load_private_key(pem, algorithm), key_type)
    env = env_of(sidecar_of(predictor_pod(rendered)))
    assert env["JWT_PRIVATE_KEY_PATH"] == "/etc/agi-credit/jwt-private-key.pem"


def test_values_given_are_kept_and_users_replace_the_generated_admin() -> None:
    users = {"alice": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"}
    rendered = Rendered.of("given", {"auth": {"jwt": {"secret": "s" * 40}, "users": users}})
    data = secret_data(rendered)
    assert data["JWT_SECRET"] == "s" * 40
    assert "admin-password" not in data and "alice" in data["users.yaml"]
    env = env_of(sidecar_of(predictor_pod(rendered)))
    assert "BOOTSTRAP_ADMIN_PASSWORD" not in env and env["USERS_FILE"]


def test_an_existing_secret_is_used_and_nothing_is_generated() -> None:
    rendered = Rendered.of("existing", {"auth": {"existingSecret": "mine"}})
    assert not rendered.kinds("Secret")
    env = env_of(sidecar_of(predictor_pod(rendered)))
    assert env["JWT_SECRET"]["secretKeyRef"]["name"] == "mine"
    assert "BOOTSTRAP_ADMIN_PASSWORD" not in env
