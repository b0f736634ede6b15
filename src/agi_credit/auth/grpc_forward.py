"""The Open Inference Protocol's gRPC service behind the same JWT as the REST API.

A generic, bytes-level forwarder: each allowed method of `inference.GRPCInferenceService`
is checked for `authorization: Bearer <token>` metadata (the predict scope) and its request
bytes are passed, never decoded, to the predictor's gRPC port on localhost; the answer
comes back the same way. Repository load/unload/index and streaming are not forwarded.
The predictor's failures reach the client as their status code and a plain message with
the request id, never the predictor's own text (an R message, a traceback).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

import grpc
import grpc.aio

from agi_credit._asgi import current_request_id
from agi_credit.auth.access import authorize
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

Unary = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


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

    async def start(self, host: str, port: int) -> None:
        self._channel = grpc.aio.insecure_channel(self.upstream, options=self._options)
        self._server = grpc.aio.server(options=self._options)
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
        """A handler for the allowed methods; None (UNIMPLEMENTED) for any other."""
        method: str = handler_call_details.method
        service, _, name = method.lstrip("/").partition("/")
        if service != SERVICE or name not in ALLOWED_METHODS:
            return None
        # No (de)serializers: the request and the answer stay bytes.
        return grpc.unary_unary_rpc_method_handler(self._forwarding(method))

    def _forwarding(self, method: str) -> Unary:
        async def forward(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            request_id = uuid.uuid4().hex
            current_request_id.set(request_id)  # for every log line of this call
            metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
            try:
                access = authorize(self.config, metadata.get("authorization"), "predict")
            except ApiError as exc:
                code = (
                    grpc.StatusCode.PERMISSION_DENIED
                    if isinstance(exc, Forbidden)
                    else grpc.StatusCode.UNAUTHENTICATED
                )
                self._log(method, code, None)
                await context.abort(code, exc.message)
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
                self._log(method, code, access.user)
                details = exc.details() if code in _PLAIN_CODES else None
                await context.abort(code, details or _safe_details(code, request_id))
            self._log(method, grpc.StatusCode.OK, access.user)
            return answer

        return forward

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
