"""The predictor, seen from the sidecar: one pooled keep-alive HTTP client on localhost."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from agi_credit.auth.errors import BadRequest, NotFound, UpstreamUnavailable

# Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), and ours.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "authorization",
    }
)


class Predictor:
    def __init__(self, base_url: str, model_name: str, *, timeout: float = 60.0) -> None:
        self.model_name = model_name
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def infer(
        self, columns: dict[str, list[float]], *, version: str | None, request_id: str
    ) -> tuple[list[float], list[int], str]:
        """Score rows (one list per feature) with the predictor's v2 endpoint."""
        path = f"/v2/models/{self.model_name}" + (f"/versions/{version}" if version else "")
        rows = len(next(iter(columns.values())))
        body = {
            "id": request_id,
            "inputs": [
                {"name": name, "shape": [rows], "datatype": "FP64", "data": values}
                for name, values in columns.items()
            ],
        }
        response = await self._send(
            "POST",
            f"{path}/infer",
            content=orjson.dumps(body),
            headers={"content-type": "application/json", "x-request-id": request_id},
        )
        payload = response.json()
        outputs = {o["name"]: o["data"] for o in payload["outputs"]}
        return (
            outputs["prob_default"],
            outputs["prediction"],
            payload["parameters"]["model_version"],
        )

    async def metadata(self, *, request_id: str) -> dict[str, Any]:
        response = await self._send(
            "GET", f"/v2/models/{self.model_name}", headers={"x-request-id": request_id}
        )
        return dict(response.json())

    async def ready(self) -> bool:
        try:
            response = await self.client.get("/v2/health/ready", timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def forward(self, request: Request, *, user: str, request_id: str) -> StreamingResponse:
        """Pass a /v1 or /v2 request through unchanged (bodies streamed both ways)."""
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if k.lower() not in _NOT_FORWARDED and k.lower() != "x-request-id"
        ]
        headers += [("x-request-id", request_id), ("x-auth-user", user)]
        # The path exactly as the client sent it (still percent-encoded), with its query.
        raw = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"")
        try:
            target = (raw + (b"?" + query if query else b"")).decode("ascii")
            outgoing = self.client.build_request(
                request.method, target, headers=headers, content=request.stream()
            )
        except (UnicodeDecodeError, httpx.InvalidURL, ValueError) as exc:
            raise BadRequest("invalid path") from exc
        try:
            response = await self.client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable("the predictor is unavailable") from exc
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            headers={
                k: v
                for k, v in response.headers.items()
                if k.lower() not in _NOT_FORWARDED and k.lower() != "x-request-id"
            },
            background=BackgroundTask(response.aclose),
        )

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable("the predictor is unavailable") from exc
        if response.status_code == 200:
            return response
        error = _error_of(response)
        if response.status_code == 400:
            raise BadRequest(error)
        if response.status_code == 404:
            raise NotFound("model version not found")
        raise UpstreamUnavailable(f"the predictor answered {response.status_code}")


def _error_of(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return f"the predictor answered {response.status_code}"
