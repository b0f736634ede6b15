"""The predictor's server: KServe's ModelServer with our routes and one ASGI middleware.

KServe parses `sys.argv` when `kserve.model_server` is imported and answers 501 on the
versioned v2 routes; we import it with a clean argv, and register versioned infer, ready
and metadata routes before KServe's own (the first matching route wins). The server starts
whether or not a version can be served yet: it is live at once, and ready as soon as a
version is (a store still empty while the training job runs, or only broken versions).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from agi_credit._asgi import (
    MAX_HEADER_BYTES,
    ASGIApp,
    BodyLimit,
    Receive,
    Scope,
    Send,
    echo_request_id,
    with_request_id,
)
from agi_credit._logging import configure_logging
from agi_credit.settings import PredictorSettings

log = logging.getLogger("agi_credit.predictor")

PASSED_THROUGH_HEADER_BYTES = MAX_HEADER_BYTES + 4096
"""The sidecar passes a client's headers on with a few of its own (request id, user,
X-Forwarded-*): the predictor allows that much more, so what the sidecar accepts gets in."""


class RequestContextMiddleware:
    """Gives every request an `x-request-id` (echoed in the response) and a JSON
    Content-Type when a body comes without one: tritonclient's JSON requests send none, and
    FastAPI rejects such bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope, request_id = with_request_id(scope)
        # An empty Content-Type counts as none.
        headers = [
            (k, v) for k, v in scope["headers"] if not (k == b"content-type" and not v.strip())
        ]
        names = {k for k, _ in headers}
        if (
            scope["method"] in ("POST", "PUT")
            and b"content-type" not in names
            and b"inference-header-content-length" not in names
        ):
            headers.append((b"content-type", b"application/json"))
        await self.app({**scope, "headers": headers}, receive, echo_request_id(send, request_id))


async def _invalid_body(_: Request, exc: Any) -> Response:
    """FastAPI's 422 for a body its model refuses, as `{"error": ...}` and without the values
    sent (FastAPI's own repeats them)."""
    from agi_credit.predictor.errors import describe_validation_errors

    assert isinstance(exc, RequestValidationError)
    message = f"invalid request: {describe_validation_errors(exc.errors())}"
    return JSONResponse({"error": message}, status_code=422)


async def _http_error(_: Request, exc: Any) -> Response:
    """Starlette's own errors (a body that is not JSON, an unknown path or method) as
    `{"error": ...}`, like every other error of the predictor."""
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


def add_error_handlers(app: FastAPI) -> None:
    """Every error answers `{"error": ...}`: KServe's handlers do for its errors, these for
    FastAPI's and Starlette's."""
    app.add_exception_handler(RequestValidationError, _invalid_body)
    app.add_exception_handler(HTTPException, _http_error)


class _ClientErrorTracebacks(logging.Filter):
    """KServe logs a traceback at ERROR for every 400 and 404; our inference log already has
    one line for each, with the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        from kserve.errors import InvalidInput, ModelNotFound

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, InvalidInput | ModelNotFound)


@contextlib.contextmanager
def _argv_for_kserve() -> Iterator[None]:
    """KServe reads sys.argv at import time: show it none of ours."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def serve(settings: PredictorSettings) -> None:
    """Load every version, then serve until SIGTERM/SIGINT. Blocks."""
    configure_logging(settings.log_level)
    # KServe 0.21 still uses FastAPI's ORJSONResponse, which warns on every request path.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    with _argv_for_kserve():
        from kserve import model_server
    logging.getLogger("kserve").addFilter(_ClientErrorTracebacks())

    from agi_credit import rruntime
    from agi_credit.predictor.binding import BoundModelServer
    from agi_credit.predictor.dataplane import CheckedDataPlane
    from agi_credit.predictor.loader import VersionLoader
    from agi_credit.predictor.model import AgiCreditModel
    from agi_credit.predictor.registry import VersionRegistry
    from agi_credit.predictor.routes import add_routes
    from agi_credit.store import DEFAULT_DECISION_THRESHOLD, ModelStore

    rruntime.start()  # on the main thread: R's start-up installs signal handlers
    r = rruntime.RThread()
    registry = VersionRegistry(
        VersionLoader(
            r,
            max_rows=settings.max_batch_rows,
            parity_rows=settings.parity_rows,
            parity_tolerance=settings.parity_tolerance,
            compile=settings.scoring == "auto",
        ),
        store=None if settings.model_path else ModelStore(settings.served_store()),
        model_path=settings.model_path,
        feature_metadata_path=settings.feature_metadata_path,
        default_threshold=DEFAULT_DECISION_THRESHOLD,
    )
    model = AgiCreditModel(settings.model_name, registry=registry, r=r)
    model.load()
    server = BoundModelServer(
        host=settings.predictor_host,
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        workers=1,
        enable_docs_url=False,
        enable_latency_logging=False,
    )
    # Before anything holds KServe's: the REST routes, ours and the gRPC server take this one.
    server.dataplane = CheckedDataPlane(model_registry=server.registered_models)
    add_routes(model_server.app, server, model)
    add_error_handlers(model_server.app)
    model_server.app.add_middleware(RequestContextMiddleware)
    # Outermost: a body over the limit is refused (413) before KServe reads it whole.
    model_server.app.add_middleware(
        BodyLimit,
        default_limit=settings.max_request_bytes,
        limits={},
        max_header_bytes=PASSED_THROUGH_HEADER_BYTES,
    )
    registry.watch(settings.reload_interval)
    state = registry.state
    log.info(
        "serving" if model.ready else "waiting for a version to serve",
        extra={
            "event": "serving" if model.ready else "not_ready",
            "model_name": settings.model_name,
            "host": settings.predictor_host,
            "http_port": settings.http_port,
            "grpc_port": settings.grpc_port,
            "current_version": state.current,
            "versions": {v: s.engine for v, s in state.served.items()},
            "unavailable": state.unavailable,
            "reason": None if model.ready else model.why_not_ready(),
        },
    )
    # Registered beforehand, the model need not be ready: KServe checks readiness only for
    # the models passed to start().
    server.register_model(model)
    try:
        server.start([])
    finally:
        registry.stop()
