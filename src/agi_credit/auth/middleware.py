"""The sidecar's ASGI middleware: the access log, and the request body size limits."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from starlette.responses import JSONResponse

from agi_credit._asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    echo_request_id,
    with_request_id,
)

log = logging.getLogger("agi_credit.auth")

TOO_LARGE = "request body too large"


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


class _BodyTooLarge(Exception):
    """Raised to the app when the body it reads goes over the limit."""


class BodyLimit:
    """413 `{"error": "request body too large"}` for a body over its path's limit (`limits`,
    else `default_limit`): at once when Content-Length announces it, otherwise as soon as the
    bytes received pass the limit. The rest of the body is never read."""

    def __init__(self, app: ASGIApp, *, default_limit: int, limits: Mapping[str, int]) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = dict(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default_limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(scope, receive, send)
            return
        received, over, started = 0, False, False

        async def receive_within_limit() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _BodyTooLarge
            return message

        async def send_unless_over(message: Message) -> None:
            # Whatever the app answers to a body cut short is replaced by the 413.
            nonlocal started
            if over and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_unless_over)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await _too_large(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse({"error": TOO_LARGE}, status_code=413, headers={"Connection": "close"})
    await response(scope, receive, send)
