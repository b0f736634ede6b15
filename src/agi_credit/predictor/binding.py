"""KServe's ModelServer, listening only on the predictor's host (PREDICTOR_HOST).

KServe 0.21 binds its REST server to 0.0.0.0 (`uvicorn.Config(host="0.0.0.0")` in
`RESTServer.__init__`) and its gRPC server to `[::]` (in `GRPCServer.start`); both are
built inside `ModelServer.start`, and run by `_serve`. Before they run, `_serve` here points
uvicorn at our host and replaces the gRPC coroutine with one that binds it. In a pod the
predictor listens on loopback and the auth sidecar is the only door.
"""

from __future__ import annotations

from concurrent import futures
from typing import Any

from grpc import aio
from kserve import ModelServer
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer

__all__ = ["BoundModelServer", "grpc_address"]


def grpc_address(host: str, port: int) -> str:
    """`host:port` as gRPC writes it: IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BoundModelServer(ModelServer):
    """A ModelServer whose REST and gRPC servers listen on `host` only."""

    def __init__(self, *, host: str, **options: Any) -> None:
        super().__init__(**options)
        self.host = host

    async def _serve(self) -> None:
        if self._rest_server is not None:
            self._rest_server.config.host = self.host
        if self._grpc_server is not None:
            # Our bound gRPC server in place of KServe's, which was built but not yet run.
            unbound = self.servers.pop()
            unbound.close()
            self.servers.append(_serve_grpc(self._grpc_server, self.host, self.max_threads))
        await super()._serve()


async def _serve_grpc(server: GRPCServer, host: str, max_workers: int) -> None:
    """KServe 0.21's `GRPCServer.start`, bound to `host` instead of `[::]`."""
    options = server._kwargs
    server._server = aio.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        interceptors=(LoggingInterceptor(), ExceptionToStatusInterceptor()),
        options=[
            ("grpc.max_send_message_length", options.get("grpc_max_send_message_length")),
            ("grpc.max_receive_message_length", options.get("grpc_max_receive_message_length")),
        ],
    )
    grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceServicer(server._data_plane, server._model_repository_extension), server._server
    )
    server._server.add_insecure_port(grpc_address(host, server._port))
    await server._server.start()
    await server._server.wait_for_termination()
