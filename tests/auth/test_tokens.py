"""Only well-formed HS256 tokens with every claim, signed with our secret, get in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agi_credit.auth import TokenIssuer
from agi_credit.auth.errors import Unauthorized
from agi_credit.auth.tokens import generate_private_key, key_id
from tests.servers import SECRET, USER, Sidecar


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "agi-credit",
        "aud": "agi-credit-api",
        "sub": USER,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "0" * 32,
        "scope": "predict",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _hs_with_public_key_as_secret() -> str:
    """The HS/RS confusion attack: HS256 signed with an RSA public key as the secret."""
    public = (
        _rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64({"alg": "HS256", "typ": "JWT"})
    body = b64(claims())
    signature = hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def good() -> str:
    return jwt.encode(claims(), SECRET, algorithm="HS256")


BAD_TOKENS = {
    "expired": (
        lambda: jwt.encode(claims(exp=int(time.time()) - 120), SECRET, algorithm="HS256"),
        "token expired",
    ),
    "not yet valid": (
        lambda: jwt.encode(claims(nbf=int(time.time()) + 600), SECRET, algorithm="HS256"),
        "invalid token",
    ),
    "wrong signature": (
        lambda: jwt.encode(claims(), "another-secret-of-at-least-32-bytes!", algorithm="HS256"),
        "invalid token",
    ),
    "wrong audience": (
        lambda: jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256"),
        "invalid token",
    ),
    "wrong issuer": (
        lambda: jwt.encode(claims(iss="evil"), SECRET, algorithm="HS256"),
        "invalid token",
    ),
    "missing jti": (
        lambda: jwt.encode(claims(jti=None), SECRET, algorithm="HS256"),
        "invalid token",
    ),
    "missing scope": (
        lambda: jwt.encode(claims(scope=None), SECRET, algorithm="HS256"),
        "invalid token",
    ),
    "a scope the user was never given": (
        lambda: jwt.encode(claims(scope="superuser"), SECRET, algorithm="HS256"),
        "token revoked",
    ),
    "a user who does not exist": (
        lambda: jwt.encode(claims(sub="mallory"), SECRET, algorithm="HS256"),
        "token revoked",
    ),
    "alg none": (lambda: f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.", "invalid token"),
    "RS256 token": (lambda: jwt.encode(claims(), _rsa_key(), algorithm="RS256"), "invalid token"),
    "HS/RS confusion": (_hs_with_public_key_as_secret, "invalid token"),
    "truncated": (lambda: good()[:-10], "invalid token"),
    "garbage": (lambda: "not-a-jwt-at-all", "invalid token"),
    "empty bearer": (lambda: "", "invalid token"),
}


@pytest.mark.parametrize(("make", "error"), BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_refused(sidecar: Sidecar, make: Any, error: str) -> None:
    response = httpx.get(
        f"{sidecar.url}/model-info", headers={"Authorization": f"Bearer {make()}".rstrip()}
    )
    assert response.status_code == 401
    assert response.json() == {"error": error}


def test_a_token_made_with_our_secret_and_every_claim_works(sidecar: Sidecar) -> None:
    response = httpx.get(f"{sidecar.url}/model-info", headers={"Authorization": f"Bearer {good()}"})
    assert response.status_code == 200


def test_other_schemes_are_refused(sidecar: Sidecar) -> None:
    response = httpx.get(f"{sidecar.url}/model-info", headers={"Authorization": f"Basic {good()}"})
    assert response.status_code == 401 and response.json() == {"error": "invalid token"}


def test_leeway_accepts_small_clock_skew() -> None:
    issuer = TokenIssuer(
        signing_key=SECRET.encode(),
        issuer="agi-credit",
        audience="agi-credit-api",
        ttl_seconds=60,
        leeway_seconds=10,
    )
    token = issuer.issue(USER, now=time.time() - 65)  # expired 5 s ago, within the leeway
    assert issuer.verify(token)["sub"] == USER


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_key_pair_tokens_verify_with_the_published_jwks(algorithm: str) -> None:
    key = generate_private_key(algorithm)  # type: ignore[arg-type]
    issuer = TokenIssuer(
        signing_key=key,
        algorithm=algorithm,  # type: ignore[arg-type]
        key_id=key_id(key),
        issuer="agi-credit",
        audience="agi-credit-api",
        ttl_seconds=60,
        leeway_seconds=0,
    )
    token = issuer.issue(USER)
    (published,) = issuer.jwks()["keys"]
    assert jwt.get_unverified_header(token)["kid"] == published["kid"]
    assert "d" not in published  # the private part never leaves
    claims = jwt.decode(
        token, jwt.PyJWK(published).key, algorithms=[algorithm], audience="agi-credit-api"
    )
    assert claims["sub"] == USER
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header, body = b64({"alg": "HS256", "typ": "JWT"}), b64(claims)
    forged = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    confused = f"{header}.{body}." + base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    with pytest.raises(Unauthorized, match="invalid token"):
        issuer.verify(confused)


def test_hs256_publishes_no_keys() -> None:
    issuer = TokenIssuer(
        signing_key=SECRET.encode(), issuer="i", audience="a", ttl_seconds=60, leeway_seconds=0
    )
    assert issuer.jwks() == {"keys": []}
