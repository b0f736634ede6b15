"""Who may do what: a bearer token checked against the signing key and the users' current
roles. The same check guards the REST routes and the gRPC forwarder."""

from __future__ import annotations

from dataclasses import dataclass

from agi_credit.auth.config import AuthConfig
from agi_credit.auth.errors import Forbidden, Unauthorized
from agi_credit.auth.tokens import bearer_token


@dataclass(frozen=True, slots=True)
class Access:
    user: str
    scopes: frozenset[str]
    """What both the token and the user's current roles allow."""


def authorize(config: AuthConfig, authorization: str | None, scope: str) -> Access:
    """The access an `Authorization: Bearer` value gives, if it includes `scope`. 401 `token
    missing`, `token expired`, `invalid token`, or `token revoked` (the user was removed or
    disabled since); 403 when the scope is missing."""
    claims = config.issuer.verify(bearer_token(authorization))
    user = str(claims["sub"])
    scopes = frozenset(str(claims["scope"]).split()) & config.users.scopes(user)
    if not scopes:
        raise Unauthorized("token revoked")
    if scope not in scopes:
        raise Forbidden(f"this needs the {scope} role")
    return Access(user, scopes)
