"""ASGI helpers shared by the predictor and the auth sidecar: one request id per request,
kept in a ContextVar so that every log line of the request carries it, and the request
size limits (headers and body)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

from starlette.responses import JSONResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID = b"x-request-id"
_SANE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")

current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request being handled; set by `with_request_id`, read by the log filter."""


def sane_request_id(sent: bytes | str | None) -> str:
    """The client's id when it is sane (it ends up in logs), a new one otherwise."""
    raw = sent.encode() if isinstance(sent, str) else (sent or b"")
    return raw.decode() if _SANE_ID.match(raw) else uuid.uuid4().hex


def with_request_id(scope: Scope) -> tuple[Scope, bytes]:
    """The scope with exactly one `x-request-id` (see `sane_request_id`); the id is also set
    in `current_request_id` for the rest of the request."""
    sent = next((v for k, v in scope["headers"] if k == REQUEST_ID), b"")
    request_id = sane_request_id(sent).encode()
    current_request_id.set(request_id.decode())
    headers = [(k, v) for k, v in scope["headers"] if k != REQUEST_ID]
    headers.append((REQUEST_ID, request_id))
    return {**scope, "headers": headers}, request_id


def echo_request_id(
    send: Send, request_id: bytes, *, on_start: Callable[[int], None] | None = None
) -> Send:
    """`send` that adds the request id to the response headers (and reports the status)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            if on_start is not None:
                on_start(message["status"])
            message = {
                **message,
                "headers": [*message.get("headers", []), (REQUEST_ID, request_id)],
            }
        await send(message)

    return sending


TOO_LARGE = "request body too large"
HEADERS_TOO_LARGE = "request headers too large"
MAX_HEADER_BYTES = 32 * 1024
"""The most bytes of header names and values a request may carry: a token and a client's
usual headers take a few KiB. Uvicorn (with httptools) sets no limit of its own."""


class _BodyTooLarge(Exception):
    """Raised to the app when the body it reads goes over the limit."""


class BodyLimit:
    """413 `{"error": "request body too large"}` for a body over its path's limit (`limits`,
    else `default_limit`): at once when Content-Length announces it, otherwise as soon as the
    bytes received pass the limit. The rest of the body is never read. Headers over
    `max_header_bytes` get a 431 `{"error": "request headers too large"}` before anything
    else sees them."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default_limit: int,
        limits: Mapping[str, int],
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = dict(limits)
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if sum(len(k) + len(v) for k, v in scope["headers"]) > self.max_header_bytes:
            await _refuse(scope, receive, send, 431, HEADERS_TOO_LARGE)
            return
        limit = self.limits.get(scope["path"], self.default_limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, 413, TOO_LARGE)
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
            await _refuse(scope, receive, send, 413, TOO_LARGE)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, error: str) -> None:
    """`{"error": error}`, closing the connection: the rest of the request is never read."""
    response = JSONResponse({"error": error}, status_code=status, headers={"Connection": "close"})
    await response(scope, receive, send)
