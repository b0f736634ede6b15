"""What the routes depend on: the sidecar's shared services, and the authenticated user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Request, Security
from fastapi.openapi.models import HTTPBearer
from fastapi.security.base import SecurityBase

from agi_credit.auth.access import authorize
from agi_credit.auth.config import AuthConfig
from agi_credit.auth.ratelimit import SlidingWindow
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
    valid `Authorization: Bearer` token names, allowed `scope`."""

    def __init__(self, scope: str = "predict") -> None:
        self.model = HTTPBearer(description="A token from POST /login.")
        self.scheme_name = "HTTPBearer"
        self.scope = scope

    async def __call__(self, request: Request) -> str:
        """The token's subject, recorded for the access log with its scopes (`authorize`
        says which errors answer otherwise)."""
        config = services(request).config
        access = authorize(config, request.headers.get("authorization"), self.scope)
        request.state.user = access.user
        request.state.scopes = access.scopes
        return access.user


CurrentUser = Annotated[str, Security(BearerUser("predict"))]
"""The authenticated user, allowed to predict: a route that takes it needs `Authorization:
Bearer <token>`, and the OpenAPI document says so."""


def is_admin(request: Request) -> bool:
    """Whether the authenticated user of `request` may see the details (the admin role)."""
    return "admin" in getattr(request.state, "scopes", frozenset())
