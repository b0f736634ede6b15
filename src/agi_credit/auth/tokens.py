"""JWTs: HS256 with a shared secret by default, or RS256/ES256 with a key pair whose public
half is published as a JWKS (for gateways that verify tokens themselves). The algorithm is
pinned on verify and every claim is required."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from agi_credit.auth.errors import InsecureConfiguration, Unauthorized

Algorithm = Literal["HS256", "RS256", "ES256"]
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "scope"]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    signing_key: bytes | PrivateKey
    """The HS256 secret, or the RS256/ES256 private key."""
    issuer: str
    audience: str
    ttl_seconds: int
    leeway_seconds: int
    algorithm: Algorithm = "HS256"
    key_id: str | None = field(default=None)

    @property
    def verify_key(self) -> Any:
        if isinstance(self.signing_key, bytes):
            return self.signing_key
        return self.signing_key.public_key()

    def issue(
        self, subject: str, scopes: Iterable[str] = ("predict",), *, now: float | None = None
    ) -> str:
        """A token for `subject` allowed `scopes` (the `scope` claim, space-separated)."""
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(sorted(scopes)),
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self.signing_key, algorithm=self.algorithm, headers=headers)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; `Unauthorized` ("token expired" / "invalid token")
        for anything else. Only the configured algorithm is accepted: no `none`, no
        switching between HMAC and public-key algorithms."""
        try:
            return jwt.decode(
                token,
                self.verify_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public key as a JSON Web Key Set; empty for HS256 (a secret is never
        published)."""
        if isinstance(self.signing_key, bytes):
            return {"keys": []}
        key = public_jwk(self.signing_key)
        return {"keys": [{**key, "kid": self.key_id, "alg": self.algorithm, "use": "sig"}]}


def load_private_key(path: Path, algorithm: Algorithm) -> PrivateKey:
    """A PEM private key of the kind `algorithm` needs."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InsecureConfiguration(f"cannot read the JWT private key {path}: {exc}") from exc
    wanted = rsa.RSAPrivateKey if algorithm == "RS256" else ec.EllipticCurvePrivateKey
    if not isinstance(key, wanted):
        raise InsecureConfiguration(f"{path} is not a key for {algorithm}")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise InsecureConfiguration(f"{path}: RSA keys need at least 2048 bits")
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
        raise InsecureConfiguration(f"{path}: ES256 needs a P-256 key")
    return key


def generate_private_key(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: PrivateKey) -> dict[str, Any]:
    """The public half of `key` as a JWK."""
    if isinstance(key, rsa.RSAPrivateKey):
        return dict(json.loads(RSAAlgorithm.to_jwk(key.public_key())))
    return dict(json.loads(ECAlgorithm.to_jwk(key.public_key())))


def key_id(key: PrivateKey) -> str:
    """The JWK thumbprint (RFC 7638) of the public key: stable across restarts."""
    jwk = public_jwk(key)
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header."""
    if not authorization:
        raise Unauthorized("token missing")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("invalid token")
    return token.strip()
