"""The auth sidecar: the origin's REST API, JWT-protected pass-through to the predictor.

The only port exposed outside the pod. `/health` is public; `/login` gives tokens;
everything else needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import StreamingResponse

from agi_credit._asgi import ASGIApp, Receive, Scope, Send, echo_request_id, with_request_id
from agi_credit.auth import schemas
from agi_credit.auth.config import AuthConfig
from agi_credit.auth.errors import ApiError, BadRequest, NotFound, TooManyRequests, Unauthorized
from agi_credit.auth.ratelimit import SlidingWindow
from agi_credit.auth.tokens import bearer_token
from agi_credit.auth.upstream import Predictor

log = logging.getLogger("agi_credit.auth")
_VERSION = re.compile(r"^v[1-9][0-9]*$")
_bearer = HTTPBearer(auto_error=False, description="A token from POST /login.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


class AccessLog:
    """One JSON line per request: id, method, path, status, latency, user. No query
    strings, bodies, passwords or tokens."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope, request_id = with_request_id(scope)
        scope.setdefault("state", {})
        started, status = time.perf_counter(), [500]
        try:
            await self.app(
                scope, receive, echo_request_id(send, request_id, on_start=status.append)
            )
        finally:
            log.info(
                "request",
                extra={
                    "event": "access",
                    "request_id": request_id.decode(),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status[-1],
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                    "user": scope["state"].get("user"),
                    "client": scope["client"][0] if scope.get("client") else None,
                },
            )


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


async def _json_body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequest("the body must be JSON") from exc


def _request_id(request: Request) -> str:
    return request.headers["x-request-id"]


def create_app(config: AuthConfig) -> FastAPI:
    predictor = Predictor(config.upstream, config.model_name)
    per_client = SlidingWindow(config.login_attempts_per_client, config.login_window_seconds)
    per_user = SlidingWindow(config.login_failures_per_user, config.login_window_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await predictor.open()
        yield
        await predictor.aclose()

    app = FastAPI(
        title="agi-credit API",
        version="1",
        description="Credit default scoring (R models served by KServe) behind JWT. "
        "POST /login for a token, then send it as `Authorization: Bearer`.",
        lifespan=lifespan,
        responses={400: {"model": schemas.Error}, 401: {"model": schemas.Error}},
    )
    app.add_middleware(AccessLog)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return JSONResponse(
            {"error": exc.message}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error(
            "unexpected error",
            exc_info=exc,
            extra={"event": "error", "request_id": request.headers.get("x-request-id")},
        )
        return JSONResponse({"error": "internal error"}, status_code=500)

    def authenticated(request: Request) -> str:
        claims = config.issuer.verify(bearer_token(request.headers.get("authorization")))
        user = str(claims["sub"])
        request.scope["state"]["user"] = user
        return user

    @app.get("/health", response_model=schemas.Health, tags=["health"])
    async def health() -> Response:
        """Liveness of the sidecar itself (public)."""
        return _json({"status": "ok"})

    @app.get(
        "/ready",
        response_model=schemas.Health,
        tags=["health"],
        responses={503: {"model": schemas.Error}},
    )
    async def ready() -> Response:
        """Ready when the predictor behind it is (public)."""
        if await predictor.ready():
            return _json({"status": "ready"})
        return _json({"error": "the predictor is not ready"}, status_code=503)

    @app.get("/.well-known/jwks.json", tags=["auth"], response_model=schemas.Jwks)
    async def jwks() -> Response:
        """The public key that signs tokens (RS256/ES256), for gateways that verify tokens
        themselves (Istio RequestAuthentication, Envoy jwt_authn). Empty with HS256."""
        return _json(config.issuer.jwks())

    @app.post(
        "/login",
        response_model=schemas.Token,
        tags=["auth"],
        openapi_extra=schemas.body(schemas.Login),
        responses={429: {"model": schemas.Error}},
    )
    async def login(request: Request) -> Response:
        """Exchange a user name and password for a JWT."""
        client = request.client.host if request.client else "unknown"
        if wait := per_client.retry_after(client):
            raise TooManyRequests(wait)
        per_client.record(client)
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise BadRequest('the body must be {"username": ..., "password": ...}')
        for field in ("username", "password"):
            if field not in body:
                raise BadRequest(f"missing field: {field}")
            if not isinstance(body[field], str):
                raise BadRequest(f"invalid type for {field}")
        username, password = body["username"], body["password"]
        if wait := per_user.retry_after(username):
            raise TooManyRequests(wait)
        if not await run_in_threadpool(config.users.authenticate, username, password):
            per_user.record(username)
            raise Unauthorized("invalid credentials")
        per_user.reset(username)
        request.scope["state"]["user"] = username
        return _json({"token": config.issuer.issue(username)})

    @app.api_route(
        "/auth/verify",
        methods=["GET", "POST", "HEAD"],
        tags=["auth"],
        response_model=schemas.Verified,
    )
    async def verify(request: Request, _: Credentials = None) -> Response:
        """For gateways that delegate authentication (ingress auth-url, Envoy ext_authz):
        200 with `X-Auth-User`, or 401."""
        user = authenticated(request)
        response = _json({"user": user})
        response.headers["X-Auth-User"] = user
        return response

    async def model_info(request: Request, version: str | None) -> Response:
        authenticated(request)
        metadata = await predictor.metadata(request_id=_request_id(request))
        parameters = metadata.get("parameters", {})
        models = [
            {
                "version": v,
                "created_at": info.get("created_at"),
                "features": info.get("features"),
                "path": info.get("path"),
            }
            for v, info in parameters.get("model_versions", {}).items()
            if info.get("status") == "serving"
        ]
        if version is not None:
            match = next((m for m in models if m["version"] == version), None)
            if match is None:
                raise NotFound("model version not found")
            return _json(match)
        return _json({"current_version": parameters.get("current_version"), "models": models})

    @app.get(
        "/model-info",
        response_model=schemas.ModelInfo,
        tags=["models"],
        responses={404: {"model": schemas.Error}},
    )
    async def model_info_route(
        request: Request, version: str | None = None, _: Credentials = None
    ) -> Response:
        """The versions the predictor serves; `?version=vN` for one of them."""
        return await model_info(request, version)

    @app.get("/model_info", include_in_schema=False)
    async def model_info_alias(request: Request, version: str | None = None) -> Response:
        return await model_info(request, version)

    async def predict(request: Request, version: str | None) -> Response:
        authenticated(request)
        if version is not None and not _VERSION.fullmatch(version):
            raise NotFound("model version not found")
        body = await _json_body(request)
        rows = body if isinstance(body, list) else [body]
        columns = _columns(rows)
        prob, labels, served = await predictor.infer(
            columns, version=version, request_id=_request_id(request)
        )
        results = [
            {"model_version": served, "prediction": y, "prob_default": p}
            for p, y in zip(prob, labels, strict=True)
        ]
        return _json(results if isinstance(body, list) else results[0])

    predict_docs = {
        "tags": ["models"],
        "openapi_extra": schemas.body(schemas.PredictBody),
        "responses": {
            200: {"model": schemas.Prediction | list[schemas.Prediction]},
            404: {"model": schemas.Error},
        },
    }

    @app.post("/predict", **predict_docs)  # type: ignore[arg-type]
    async def predict_current(
        request: Request, version: str | None = None, _: Credentials = None
    ) -> Response:
        """Score one applicant (an object of features) or a batch (a list of them) with the
        current version, or `?version=vN`."""
        return await predict(request, version)

    @app.post("/predict/{version}", **predict_docs)  # type: ignore[arg-type]
    async def predict_version(request: Request, version: str, _: Credentials = None) -> Response:
        """Score with version `vN`."""
        return await predict(request, version)

    async def passthrough(request: Request, path: str) -> StreamingResponse:
        user = authenticated(request)
        return await predictor.forward(request, user=user, request_id=_request_id(request))

    for prefix, tag in (("/v1", "KServe v1"), ("/v2", "Open Inference Protocol v2")):
        app.add_api_route(
            f"{prefix}/{{path:path}}",
            passthrough,
            methods=["GET", "POST"],
            tags=[tag],
            summary=f"{prefix}/* passed to the predictor",
            dependencies=[Security(_bearer)],
        )
    return app


def _columns(rows: list[Any]) -> dict[str, list[float]]:
    """The origin's feature objects as one list of values per feature, type-checked."""
    if not rows:
        raise BadRequest("empty batch: send at least one applicant")
    if not all(isinstance(row, dict) for row in rows):
        raise BadRequest("the body must be an object of features or a list of them")
    names = list(rows[0])
    if not names:
        raise BadRequest("no features in the request")
    columns: dict[str, list[float]] = {name: [] for name in names}
    for i, row in enumerate(rows):
        if row.keys() != columns.keys():
            missing = [n for n in names if n not in row]
            extra = [n for n in row if n not in columns]
            problem = (
                f"missing features: {missing}" if missing else (f"unexpected features: {extra}")
            )
            raise BadRequest(problem + (f" (row {i})" if len(rows) > 1 else ""))
        for name in names:
            value = row[name]
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
            ):
                raise BadRequest(f"invalid type for {name}")
            columns[name].append(float(value))
    return columns
