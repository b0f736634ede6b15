"""Public routes: no token needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from agi_credit.auth.dependencies import services
from agi_credit.auth.schemas import Error, Health, Jwks

router = APIRouter()


@router.get("/health", tags=["health"])
async def health() -> Health:
    """Liveness of the sidecar itself."""
    return Health(status="ok")


@router.get("/ready", tags=["health"], response_model=Health, responses={503: {"model": Error}})
async def ready(request: Request) -> Any:
    """Ready when the predictor behind it is."""
    if await services(request).predictor.ready():
        return Health(status="ready")
    return JSONResponse({"error": "the predictor is not ready"}, status_code=503)


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(request: Request) -> Jwks:
    """The public key that signs tokens (RS256/ES256), for gateways that verify tokens
    themselves (Istio RequestAuthentication, Envoy jwt_authn). Empty with HS256."""
    return Jwks.model_validate(services(request).config.issuer.jwks())
