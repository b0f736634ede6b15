"""The Open Inference Protocol's gRPC service behind the same JWT as the REST API.

A generic, bytes-level forwarder: each allowed method of `inference.GRPCInferenceService`
is checked for `authorization: Bearer <token>` metadata (the predict scope) and its request
bytes are passed, never decoded, to the predictor's gRPC port on localhost; the answer
comes back the same way. Repository load/unload/index and streaming are not forwarded.
The predictor's failures reach the client as their status code and a plain message with
the request id, never the predictor's own text (an R message, a traceback).

Memory (docs/reliability.md, "Memory bounds"): the token is checked on the call's metadata,
before its message is read, and a refused call never reads it. Every forwarded call reads
its message only once it holds one of the /predict slots (`MAX_CONCURRENT_PREDICTS`, shared
with REST), so that at most that many messages (up to `MAX_REQUEST_BYTES` each) are in
memory at once, whatever the protocol. Hence stream-unary handlers for unary methods: grpc
gives a unary-unary handler its message only once it has read all of it. A message not
read yet waits in its client, stopped by HTTP/2 flow control (see `start`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeAlias

import grpc
import grpc.aio

from agi_credit._asgi import current_request_id
from agi_credit.auth.access import Access, authorize
from agi_credit.auth.config import AuthConfig
from agi_credit.auth.errors import ApiError, Forbidden

log = logging.getLogger("agi_credit.auth")

SERVICE = "inference.GRPCInferenceService"
ALLOWED_METHODS = frozenset(
    {"ServerLive", "ServerReady", "ServerMetadata", "ModelReady", "ModelMetadata", "ModelInfer"}
)
# Codes whose details are our own messages (never a value): passed on as they are.
_PLAIN_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
_SAFE_DETAILS = {
    grpc.StatusCode.UNAVAILABLE: "the predictor is unavailable",
    grpc.StatusCode.UNIMPLEMENTED: "not implemented for this model",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the predictor did not answer in time",
}

Context: TypeAlias = grpc.aio.ServicerContext[bytes, bytes]
Handler: TypeAlias = Callable[[AsyncIterator[bytes], Context], Awaitable[bytes]]
"""A stream-unary behaviour: the request is an iterator, read (or not) when we choose."""


class GrpcForwarder(grpc.GenericRpcHandler):
    """The gRPC server of the sidecar; `start` and `stop` it inside the event loop."""

    def __init__(self, config: AuthConfig, upstream: str, *, timeout: float = 60.0) -> None:
        self.config = config
        self.upstream = upstream
        self.timeout = timeout
        size = config.max_request_bytes
        self._options = [
            ("grpc.max_receive_message_length", size),
            ("grpc.max_send_message_length", size),
        ]
        self._server: grpc.aio.Server | None = None
        self._channel: grpc.aio.Channel | None = None
        self._slots: asyncio.Semaphore | None = None

    async def start(self, host: str, port: int, slots: asyncio.Semaphore) -> None:
        """Serve on host:port; each forwarded call holds one of `slots` (the REST /predict
        slots: the same loop) from reading its message until the predictor has answered."""
        self._slots = slots
        self._channel = grpc.aio.insecure_channel(self.upstream, options=self._options)
        # No BDP probing: without it, a stream whose message is not being read gets
        # HTTP/2's default window (64 KiB); with it, the window grows with the
        # connection's throughput: a call waiting for a slot on a connection that had just
        # carried a message at the limit took 12 MB of its own in 3 s (tests/auth/
        # test_grpc_large_messages.py). Reading is slower on long round trips: as fast on
        # loopback; 0.5 s instead of 0.2 for 64 MiB through a proxy adding 4 ms RTT.
        server_options = [*self._options, ("grpc.http2.bdp_probe", 0)]
        self._server = grpc.aio.server(options=server_options)
        self._server.add_generic_rpc_handlers([self])
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._server.add_insecure_port(address)
        await self._server.start()
        log.info(f"gRPC on {address}, forwarded to {self.upstream}", extra={"event": "grpc"})

    async def stop(self, grace: float = 5.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
        if self._channel is not None:
            await self._channel.close()

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        """A handler for the allowed methods; None (UNIMPLEMENTED) for any other. The token
        is checked here, on the call's metadata, before a byte of its message is read."""
        method: str = handler_call_details.method
        service, _, name = method.lstrip("/").partition("/")
        if service != SERVICE or name not in ALLOWED_METHODS:
            return None
        pairs = handler_call_details.invocation_metadata or ()
        metadata = {k: v for k, v in pairs if isinstance(v, str)}
        try:
            access = authorize(self.config, metadata.get("authorization"), "predict")
        except ApiError as exc:
            behaviour = self._refusing(method, exc)
        else:
            behaviour = self._forwarding(method, access)
        # No (de)serializers: the request and the answer stay bytes.
        return grpc.stream_unary_rpc_method_handler(behaviour)

    def _refusing(self, method: str, error: ApiError) -> Handler:
        code = (
            grpc.StatusCode.PERMISSION_DENIED
            if isinstance(error, Forbidden)
            else grpc.StatusCode.UNAUTHENTICATED
        )

        async def refuse(_: AsyncIterator[bytes], context: Context) -> bytes:
            """Never reads the message: the client is stopped by flow control, then told."""
            current_request_id.set(uuid.uuid4().hex)
            self._log(method, code, None)
            await context.abort(code, error.message)
            raise AssertionError("abort() raises")  # for mypy: grpc's stubs do not say so

        return refuse

    def _forwarding(self, method: str, access: Access) -> Handler:
        async def forward(_: AsyncIterator[bytes], context: Context) -> bytes:
            """Reads the message with `context.read()`, not from the request iterator: the
            iterator (an async generator) would hold it until the call is over."""
            request_id = uuid.uuid4().hex
            current_request_id.set(request_id)  # for every log line of this call
            assert self._slots is not None, "GrpcForwarder.start() was not awaited"
            async with self._slots:  # waiting, the message stays unread (in flow control)
                request = await context.read()
                if request is grpc.aio.EOF:  # the client half-closed without one
                    code, answer, details = grpc.StatusCode.INTERNAL, b"", "no request message"
                else:
                    code, answer, details = await self._call(method, request, request_id, access)
                    del request  # gone before the slot goes to the next call
            self._log(method, code, access.user)
            if code != grpc.StatusCode.OK:
                await context.abort(code, details)
            return answer

        return forward

    async def _call(
        self, method: str, request: bytes, request_id: str, access: Access
    ) -> tuple[grpc.StatusCode, bytes, str]:
        """The predictor's answer, or its failure's code and the details the client may see:
        returned, so that the caller drops the message before it gives its slot back."""
        assert self._channel is not None, "GrpcForwarder.start() was not awaited"
        call = self._channel.unary_unary(method)
        try:
            answer: bytes = await call(
                request,
                timeout=self.timeout,
                metadata=(("x-request-id", request_id), ("x-auth-user", access.user)),
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            details = exc.details() if code in _PLAIN_CODES else None
            return code, b"", details or _safe_details(code, request_id)
        return grpc.StatusCode.OK, answer, ""

    @staticmethod
    def _log(method: str, code: grpc.StatusCode, user: str | None) -> None:
        """One line per call, as the REST access log: never the message or the token."""
        log.info(
            "grpc",
            extra={
                "event": "access",
                "method": "gRPC",
                "path": method,
                "status": code.name,
                "user": user,
            },
        )


def _safe_details(code: grpc.StatusCode, request_id: str) -> str:
    return f"{_SAFE_DETAILS.get(code, 'internal error')} (request id {request_id})"
