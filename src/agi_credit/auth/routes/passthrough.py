"""KServe's inference routes, passed through to the predictor for authenticated users.

An allow-list: the v2 (Open Inference Protocol) and v1 routes a client needs to ask for
health, metadata, predictions and explanations. Everything else the predictor serves (model
repository load/unload, model lists, /metrics, its docs) is not reachable through the sidecar:
the request answers 404 `{"error": "not found"}` here and never reaches the predictor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import StreamingResponse

from agi_credit.auth.dependencies import CurrentUser, services
from agi_credit.auth.upstream import sidecar_headers

V2 = "Open Inference Protocol v2"
V1 = "KServe v1"

ModelName = Annotated[str, Path(description="The model's name (MODEL_NAME).")]
ModelVersion = Annotated[str, Path(description="A version the predictor serves: vN.")]

router = APIRouter()


async def _forward(request: Request, user: str) -> StreamingResponse:
    predictor = services(request).predictor
    return await predictor.forward(request, headers=sidecar_headers(request, user))


async def server_route(request: Request, user: CurrentUser) -> StreamingResponse:
    return await _forward(request, user)


async def model_route(name: ModelName, request: Request, user: CurrentUser) -> StreamingResponse:
    return await _forward(request, user)


async def version_route(
    name: ModelName,
    version: ModelVersion,
    request: Request,
    user: CurrentUser,
) -> StreamingResponse:
    return await _forward(request, user)


ALLOWED: list[tuple[str, str, Callable[..., Awaitable[StreamingResponse]], str, str]] = [
    ("GET", "/v2", server_route, V2, "Server metadata"),
    ("GET", "/v2/health/live", server_route, V2, "Server liveness"),
    ("GET", "/v2/health/ready", server_route, V2, "Server readiness"),
    ("GET", "/v2/models/{name}", model_route, V2, "Model metadata, every version's status"),
    ("GET", "/v2/models/{name}/ready", model_route, V2, "Model readiness"),
    ("POST", "/v2/models/{name}/infer", model_route, V2, "Inference, current version"),
    ("GET", "/v2/models/{name}/versions/{version}", version_route, V2, "Version metadata"),
    ("GET", "/v2/models/{name}/versions/{version}/ready", version_route, V2, "Version readiness"),
    ("POST", "/v2/models/{name}/versions/{version}/infer", version_route, V2, "Inference, vN"),
    ("GET", "/v1/models/{name}", model_route, V1, "Model status"),
    ("POST", "/v1/models/{name}:predict", model_route, V1, "Prediction"),
    ("POST", "/v1/models/{name}:explain", model_route, V1, "Explanation"),
]
"""(method, path, endpoint, tag, summary) of every route passed through."""

for method, path, endpoint, tag, summary in ALLOWED:
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        tags=[tag],
        summary=summary,
        description="Passed to the predictor: body and answer streamed unchanged.",
    )
