"""What the routes depend on: the sidecar's shared services, and the authenticated user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Request, Security
from fastapi.openapi.models import HTTPBearer
from fastapi.security.base import SecurityBase

from agi_credit.auth.config import AuthConfig
from agi_credit.auth.ratelimit import SlidingWindow
from agi_credit.auth.tokens import bearer_token
from agi_credit.auth.upstream import Predictor


@dataclass(frozen=True)
class Services:
    """Built once by `create_app`, kept in `app.state.services`."""

    config: AuthConfig
    predictor: Predictor
    logins_per_client: SlidingWindow
    """Login attempts per client address."""
    failures_per_user: SlidingWindow
    """Failed (or still running) logins per user name."""


def services(request: Request) -> Services:
    """The services of the app handling `request`."""
    shared: Services = request.app.state.services
    return shared


class BearerUser(SecurityBase):
    """The `HTTPBearer` security scheme of the OpenAPI document, and its check: the user a
    valid `Authorization: Bearer` token names."""

    def __init__(self) -> None:
        self.model = HTTPBearer(description="A token from POST /login.")
        self.scheme_name = "HTTPBearer"

    async def __call__(self, request: Request) -> str:
        """The token's subject, recorded for the access log; 401 `token missing`, `token
        expired` or `invalid token` otherwise."""
        token = bearer_token(request.headers.get("authorization"))
        user = str(services(request).config.issuer.verify(token)["sub"])
        request.state.user = user
        return user


CurrentUser = Annotated[str, Security(BearerUser())]
"""The authenticated user: a route that takes it needs `Authorization: Bearer <token>`, and
the OpenAPI document says so."""
