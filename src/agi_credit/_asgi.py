"""ASGI helpers shared by the predictor and the auth sidecar: one request id per request,
kept in a ContextVar so that every log line of the request carries it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

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
