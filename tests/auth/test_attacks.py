"""The auth attack matrix, over HTTP against a running sidecar in RS256 mode: every forged,
stale, stripped or oversized token is refused with a 4xx, never a 5xx, and a good one gets
in. RS256 is where algorithm confusion is real: the public key is published."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from agi_credit.auth.tokens import generate_private_key
from tests.auth.echo import Echo, bearer, sidecar_in_front_of
from tests.servers import PASSWORD, USER, make_users_file

ISSUER, AUDIENCE = "agi-credit", "agi-credit-api"
CLAIMS = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti", "scope")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rsa.RSAPrivateKey]:
    key = generate_private_key("RS256")
    assert isinstance(key, rsa.RSAPrivateKey)
    pem = tmp_path_factory.mktemp("keys") / "jwt.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, key


@pytest.fixture(scope="module")
def attack_users(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("attack-users") / "users.yaml"
    return make_users_file(path, {USER: PASSWORD, "leaver": "a password to remove"})


def rs256_env(key: Path, users: Path) -> dict[str, str]:
    return {
        "ENV": "prod",
        "JWT_ALGORITHM": "RS256",
        "JWT_PRIVATE_KEY_PATH": str(key),
        "USERS_FILE": str(users),
    }


@pytest.fixture(scope="module")
def front(
    echo: Echo,
    keys: tuple[Path, rsa.RSAPrivateKey],
    attack_users: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    log = tmp_path_factory.mktemp("attacks") / "sidecar.log"
    with sidecar_in_front_of(echo, log, env=rs256_env(keys[0], attack_users)) as url:
        yield url


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": USER, "iat": now, "nbf": now,
        "exp": now + 600, "jti": "a" * 32, "scope": "predict",
    }  # fmt: skip
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(secret: bytes, body: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """An HS256 token signed by hand with any bytes as the secret (PyJWT refuses PEM keys)."""
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(body).encode())
    signature = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64(signature)}"


def status(front: str, token: str) -> tuple[int, str]:
    response = httpx.get(f"{front}/model-info", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.text


def published_key(front: str) -> rsa.RSAPublicKey:
    (jwk,) = httpx.get(f"{front}/.well-known/jwks.json").json()["keys"]
    key = jwt.PyJWK(jwk).key
    assert isinstance(key, rsa.RSAPublicKey)
    return key


ATTACKER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NONE_HEADER = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())


def forged(front: str, own: rsa.RSAPrivateKey) -> dict[str, Callable[[], str]]:
    """Name -> a token an attacker could send, each of which must be refused."""
    public = published_key(front)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = jwt.get_unverified_header(bearer(front)["Authorization"].split()[1])["kid"]
    cases: dict[str, Callable[[], str]] = {
        "expired": lambda: jwt.encode(claims(exp=int(time.time()) - 120), own, "RS256"),
        "not yet valid": lambda: jwt.encode(claims(nbf=int(time.time()) + 600), own, "RS256"),
        "another key": lambda: jwt.encode(claims(), ATTACKER, "RS256"),
        "another issuer": lambda: jwt.encode(claims(iss="evil"), own, "RS256"),
        "another audience": lambda: jwt.encode(claims(aud="other-api"), own, "RS256"),
        "alg none": lambda: f"{NONE_HEADER}.{b64(json.dumps(claims()).encode())}.",
        "HS256 with our public key (PEM)": lambda: hs256(pem, claims()),
        "HS256 with our public key (PEM, no newline)": lambda: hs256(pem.strip(), claims()),
        "HS256 with our public key (DER)": lambda: hs256(der, claims()),
        "our kid, another key": lambda: jwt.encode(
            claims(), ATTACKER, "RS256", headers={"kid": kid}
        ),
        "kid path traversal": lambda: jwt.encode(
            claims(), ATTACKER, "RS256", headers={"kid": "../../../../dev/null"}
        ),
        "jku to the attacker's keys": lambda: jwt.encode(
            claims(), ATTACKER, "RS256", headers={"jku": "http://127.0.0.1:9/jwks.json"}
        ),
        "x5u to the attacker's certificate": lambda: jwt.encode(
            claims(), ATTACKER, "RS256", headers={"x5u": "http://127.0.0.1:9/cert.pem"}
        ),
        "embedded jwk of the attacker": lambda: jwt.encode(
            claims(),
            ATTACKER,
            "RS256",
            headers={"jwk": json.loads(RSAAlgorithm.to_jwk(ATTACKER.public_key()))},
        ),
        "a scope never given": lambda: jwt.encode(claims(scope="superuser"), own, "RS256"),
        "an unknown user": lambda: jwt.encode(claims(sub="mallory"), own, "RS256"),
    }
    for claim in CLAIMS:
        cases[f"no {claim}"] = lambda claim=claim: jwt.encode(claims(**{claim: None}), own, "RS256")
    return cases


def test_a_well_made_token_gets_in(front: str, keys: tuple[Path, rsa.RSAPrivateKey]) -> None:
    assert status(front, jwt.encode(claims(), keys[1], "RS256"))[0] == 200
    assert status(front, bearer(front)["Authorization"].split()[1])[0] == 200


def test_every_forged_token_is_refused(front: str, keys: tuple[Path, rsa.RSAPrivateKey]) -> None:
    answers = {name: status(front, make()) for name, make in forged(front, keys[1]).items()}
    let_in = {name: answer for name, answer in answers.items() if answer[0] != 401}
    assert not let_in, let_in
    assert len(answers) >= 24
    print(f"{len(answers)} forged tokens, all 401")


@pytest.mark.parametrize("size", [8 * 1024, 64 * 1024, 1024 * 1024])
def test_oversized_tokens_get_a_4xx_never_a_5xx(front: str, size: int) -> None:
    token = jwt.encode(claims(pad="x" * size), ATTACKER, "RS256")
    try:
        code = status(front, token)[0]
    except httpx.RemoteProtocolError:
        code = 431  # the server closed the connection on the header: refused, not served
    assert 400 <= code < 500, code
    assert httpx.get(f"{front}/health").status_code == 200  # and it still serves


def revoked_within_5_seconds(front: str, headers: dict[str, str]) -> httpx.Response:
    """The first answer to `headers` that is not a 200, within 5 s."""
    deadline = time.monotonic() + 5
    while (response := httpx.get(f"{front}/model-info", headers=headers)).status_code == 200:
        assert time.monotonic() < deadline, "still accepted 5 s after the user was removed"
        time.sleep(0.1)
    return response


def test_a_removed_users_token_is_revoked(front: str, attack_users: Path) -> None:
    headers = bearer(front, "leaver", "a password to remove")
    assert httpx.get(f"{front}/model-info", headers=headers).status_code == 200
    data = yaml.safe_load(attack_users.read_text())
    del data["users"]["leaver"]
    attack_users.write_text(yaml.safe_dump(data))
    response = revoked_within_5_seconds(front, headers)
    assert response.status_code == 401 and response.json() == {"error": "token revoked"}


def remove_the_last_user(users: Path) -> None:
    data = yaml.safe_load(users.read_text())
    data["users"].clear()
    users.write_text(yaml.safe_dump(data))  # users: {}


def empty_the_file(users: Path) -> None:
    users.write_text("")  # `: > users.yaml`, in an incident


@pytest.mark.parametrize("lock_out", [remove_the_last_user, empty_the_file])
def test_when_the_last_user_goes_every_token_is_revoked(
    echo: Echo,
    keys: tuple[Path, rsa.RSAPrivateKey],
    tmp_path: Path,
    lock_out: Callable[[Path], None],
) -> None:
    users = make_users_file(tmp_path / "users.yaml", {"last": "the last password"})
    with sidecar_in_front_of(echo, tmp_path / "sidecar.log", env=rs256_env(keys[0], users)) as url:
        headers = bearer(url, "last", "the last password")
        signed = jwt.encode(claims(sub="last"), keys[1], "RS256")  # as good as one it issued
        assert status(url, signed)[0] == 200

        lock_out(users)
        response = revoked_within_5_seconds(url, headers)
        assert response.status_code == 401 and response.json() == {"error": "token revoked"}
        code, body = status(url, signed)
        assert code == 401 and json.loads(body) == {"error": "token revoked"}
        login = {"username": "last", "password": "the last password"}
        assert httpx.post(f"{url}/login", json=login).status_code == 401
