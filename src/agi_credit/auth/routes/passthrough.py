"""KServe's inference routes, passed through to the predictor for authenticated users.

An allow-list: the v2 (Open Inference Protocol) and v1 routes a client needs to ask for
health, metadata, predictions and explanations. Everything else the predictor serves (model
repository load/unload, model lists, /metrics, its docs) is not reachable through the sidecar:
the request answers 404 `{"error": "not found"}` here and never reaches the predictor.
The model metadata's hashes and load errors are for the admin role only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response, StreamingResponse

from agi_credit.auth.dependencies import CurrentUser, is_admin, services
from agi_credit.auth.errors import BadGateway
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


ADMIN_ONLY_VERSION_FIELDS = ("sha256", "error", "store_problem")
"""What of a version's status only admins see: artifact hashes, load errors, store damage."""


async def _for_the_role(request: Request, response: StreamingResponse) -> Response:
    """The model metadata as the predictor sent it for an admin; for anyone else without
    the hashes, load errors and reload error of `parameters` (read whole: it is small)."""
    if is_admin(request) or response.status_code != 200:
        return response
    if response.headers.get("content-encoding", "identity") != "identity":
        raise BadGateway("unexpected answer from the predictor (encoded metadata)")  # fail closed
    chunks = [chunk async for chunk in response.body_iterator]  # aiohttp gives bytes
    body = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
    if response.background is not None:
        await response.background()  # give the connection back to the pool
    try:
        metadata = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Response(body, status_code=200, media_type="application/json")
    parameters = metadata.get("parameters") if isinstance(metadata, dict) else None
    if isinstance(parameters, dict):
        parameters.pop("reload_error", None)
        for info in (parameters.get("model_versions") or {}).values():
            if isinstance(info, dict):
                for field in ADMIN_ONLY_VERSION_FIELDS:
                    info.pop(field, None)
    return Response(orjson.dumps(metadata), status_code=200, media_type="application/json")


async def model_metadata_route(name: ModelName, request: Request, user: CurrentUser) -> Response:
    return await _for_the_role(request, await _forward(request, user))


async def version_metadata_route(
    name: ModelName,
    version: ModelVersion,
    request: Request,
    user: CurrentUser,
) -> Response:
    return await _for_the_role(request, await _forward(request, user))


ALLOWED: list[tuple[str, str, Callable[..., Awaitable[Response]], str, str]] = [
    ("GET", "/v2", server_route, V2, "Server metadata"),
    ("GET", "/v2/health/live", server_route, V2, "Server liveness"),
    ("GET", "/v2/health/ready", server_route, V2, "Server readiness"),
    (
        "GET",
        "/v2/models/{name}",
        model_metadata_route,
        V2,
        "Model metadata, every version's status",
    ),
    ("GET", "/v2/models/{name}/ready", model_route, V2, "Model readiness"),
    ("POST", "/v2/models/{name}/infer", model_route, V2, "Inference, current version"),
    ("GET", "/v2/models/{name}/versions/{version}", version_metadata_route, V2, "Version metadata"),
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
