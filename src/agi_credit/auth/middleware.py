"""The sidecar's access log (the body size limit, `BodyLimit`, is shared with the predictor)."""

from __future__ import annotations

import logging
import time

from agi_credit._asgi import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    echo_request_id,
    with_request_id,
)

log = logging.getLogger("agi_credit.auth")


class AccessLog:
    """One JSON line per request: method, path, status, latency, user and client (the log
    filter adds the request id). No query strings, bodies, passwords or tokens."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope, request_id = with_request_id(scope)
        state = scope.setdefault("state", {})
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
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status[-1],
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                    "user": state.get("user"),
                    "client": scope["client"][0] if scope.get("client") else None,
                },
            )
