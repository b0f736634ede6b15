"""The auth sidecar: the origin's REST API, JWT-protected pass-through to the predictor.

The only port exposed outside the pod (its metrics are on a loopback port of their own,
`metrics.py`). `create_app` assembles the routers (`routes`), the middleware (access log,
body size limits) and the error handlers: every error answers `{"error": "..."}`, as the
origin's API did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from agi_credit._asgi import BodyLimit, current_request_id
from agi_credit.auth import routes
from agi_credit.auth.config import load_config
from agi_credit.auth.dependencies import Services
from agi_credit.auth.errors import ApiError
from agi_credit.auth.grpc_forward import GrpcForwarder
from agi_credit.auth.metrics import serve_metrics, users_registry
from agi_credit.auth.middleware import AccessLog
from agi_credit.auth.ratelimit import SlidingWindow
from agi_credit.auth.schemas import Error, error_message
from agi_credit.auth.upstream import Predictor
from agi_credit.settings import AuthSettings

log = logging.getLogger("agi_credit.auth")

LOGIN_MAX_BYTES = 4096
"""A user name and a password fit in far less."""

_HTTP_ERRORS = {404: "not found", 405: "method not allowed", 413: "request body too large"}


def create_app(settings: AuthSettings) -> FastAPI:
    """The sidecar; `InsecureConfiguration` when `settings` are not safe for ENV=prod."""
    config = load_config(settings)
    services = Services(
        config=config,
        predictor=Predictor(config.upstream, config.model_name),
        logins_per_client=SlidingWindow(
            config.login_attempts_per_client,
            config.login_window_seconds,
            max_keys=config.rate_limit_max_keys,
        ),
        failures_per_user=SlidingWindow(
            config.login_failures_per_user,
            config.login_window_seconds,
            max_keys=config.rate_limit_max_keys,
        ),
    )

    grpc = GrpcForwarder(config, settings.predictor_grpc) if settings.auth_grpc_port else None
    metrics = users_registry(config.users)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # In the server's loop: the /predict requests and gRPC calls served at once.
        app.state.predict_slots = asyncio.Semaphore(settings.max_concurrent_predicts)
        await services.predictor.open()
        if grpc is not None:
            # The same slots: gRPC calls run in this loop too (grpc_forward.py).
            await grpc.start(settings.auth_host, settings.auth_grpc_port, app.state.predict_slots)
        port = settings.auth_metrics_port
        stop_metrics = serve_metrics(metrics, port) if port else None
        try:
            yield
        finally:
            if stop_metrics is not None:
                stop_metrics()
            if grpc is not None:
                await grpc.stop()
            await services.predictor.aclose()
            config.users.close()

    app = FastAPI(
        title="agi-credit API",
        version="1",
        description="Credit default scoring (R models served by KServe) behind JWT. "
        "POST /login for a token, then send it as `Authorization: Bearer`.",
        lifespan=lifespan,
        responses={"4XX": {"model": Error, "description": 'The problem, as `{"error": "..."}`'}},
        strict_content_type=False,  # as the origin: a JSON body needs no Content-Type
    )
    app.state.services = services
    app.include_router(routes.origin)  # first: /predict is matched soonest
    app.include_router(routes.public)
    app.include_router(routes.passthrough)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(
        BodyLimit,
        default_limit=config.max_request_bytes,
        limits={"/login": LOGIN_MAX_BYTES},
    )
    app.add_middleware(AccessLog)  # it sees every answer, 413s included
    if settings.trusted_proxies:
        # Outermost: the client address that the access log, the login limiter and the
        # predictor's X-Forwarded-For see is the last hop not in TRUSTED_PROXIES.
        trusted = [str(network) for network in settings.trusted_proxies]
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)
    return app


def _error(message: str, status_code: int, headers: Mapping[str, str] | None = None) -> Response:
    """`{"error": message}`; from 500 on with the request id, which the logs name too."""
    body: dict[str, str] = {"error": message}
    if status_code >= 500:
        body["request_id"] = current_request_id.get() or ""
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


async def _api_error(_: Request, exc: Any) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc.message, exc.status_code, exc.headers)


async def _invalid_request(_: Request, exc: Any) -> Response:
    """A body (or parameter) its model refused: 400 with the origin's message."""
    assert isinstance(exc, RequestValidationError)
    return _error(error_message(exc.errors()), 400)


async def _http_error(_: Request, exc: Any) -> Response:
    """Starlette's own errors: an unknown path (404), method (405)..."""
    assert isinstance(exc, HTTPException)
    message = _HTTP_ERRORS.get(exc.status_code, str(exc.detail).lower())
    return _error(message, exc.status_code, exc.headers)


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.error("unexpected error", exc_info=exc, extra={"event": "error"})
    return _error("internal error", 500)
