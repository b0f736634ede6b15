"""The predictor's server: KServe's ModelServer with our routes and one ASGI middleware.

KServe parses `sys.argv` when `kserve.model_server` is imported and answers 501 on the
versioned v2 routes; we import it with a clean argv, and register versioned infer, ready
and metadata routes before KServe's own (the first matching route wins).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agi_credit._asgi import ASGIApp, Receive, Scope, Send, echo_request_id, with_request_id
from agi_credit._logging import configure_logging

log = logging.getLogger("agi_credit.predictor")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    model_name: str
    store: Path | None
    model_path: Path | None
    feature_metadata_path: Path | None
    http_port: int
    grpc_port: int
    max_batch_rows: int
    reload_interval: float
    parity_rows: int
    parity_tolerance: float
    scoring: str = "auto"
    """auto: compiled where it matches R; r: every version in R."""


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


def serve(options: ServeOptions) -> None:
    """Load every version, then serve until SIGTERM/SIGINT. Blocks."""
    configure_logging()
    # KServe 0.21 still uses FastAPI's ORJSONResponse, which warns on every request path.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    with _argv_for_kserve():
        from kserve import ModelServer, model_server
    logging.getLogger("kserve").addFilter(_ClientErrorTracebacks())

    from agi_credit.predictor.model import AgiCreditModel
    from agi_credit.predictor.routes import add_routes
    from agi_credit.predictor.versions import RThread, VersionRegistry
    from agi_credit.store import ModelStore

    registry = VersionRegistry(
        r=RThread(),
        store=ModelStore(options.store) if options.store else None,
        model_path=options.model_path,
        feature_metadata_path=options.feature_metadata_path,
        max_rows=options.max_batch_rows,
        parity_rows=options.parity_rows,
        parity_tolerance=options.parity_tolerance,
        compile=options.scoring == "auto",
    )
    model = AgiCreditModel(options.model_name, registry=registry, r=registry.r)
    if not model.load():
        reasons = registry.state.unavailable or {"the store": "has no model versions yet"}
        raise SystemExit(
            "agi-credit serve: no version can be served: "
            + "; ".join(f"{v}: {why}" for v, why in reasons.items())
        )
    server = ModelServer(
        http_port=options.http_port,
        grpc_port=options.grpc_port,
        workers=1,
        enable_docs_url=False,
        enable_latency_logging=False,
    )
    add_routes(model_server.app, server, model)
    model_server.app.add_middleware(RequestContextMiddleware)
    registry.watch(options.reload_interval)
    state = registry.state
    log.info(
        "serving",
        extra={
            "event": "serving",
            "model_name": options.model_name,
            "http_port": options.http_port,
            "grpc_port": options.grpc_port,
            "current_version": state.current,
            "versions": {v: s.path for v, s in state.served.items()},
            "unavailable": state.unavailable,
        },
    )
    try:
        server.start([model])
    finally:
        registry.stop()
