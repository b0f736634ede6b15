"""The predictor, seen from the sidecar: one pooled keep-alive HTTP client on localhost."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import yarl
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
    """Call `open()` inside the event loop (the app's lifespan) before use."""

    def __init__(self, base_url: str, model_name: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        # aiohttp rather than httpx: on this path the client was two thirds of the CPU.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            auto_decompress=False,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "Predictor.open() was not awaited"
        return self._session

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
        payload = await self._call(
            "POST",
            f"{path}/infer",
            data=orjson.dumps(body),
            headers={"content-type": "application/json", "x-request-id": request_id},
        )
        outputs = {o["name"]: o["data"] for o in payload["outputs"]}
        return (
            outputs["prob_default"],
            outputs["prediction"],
            payload["parameters"]["model_version"],
        )

    async def metadata(self, *, request_id: str) -> dict[str, Any]:
        return dict(
            await self._call(
                "GET", f"/v2/models/{self.model_name}", headers={"x-request-id": request_id}
            )
        )

    async def ready(self) -> bool:
        try:
            async with self.session.get(
                f"{self.base_url}/v2/health/ready", timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

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
            target = yarl.URL(
                self.base_url + (raw + (b"?" + query if query else b"")).decode("ascii"),
                encoded=True,
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest("invalid path") from exc
        try:
            response = await self.session.request(
                request.method,
                target,
                headers=headers,
                data=request.stream(),
                allow_redirects=False,
                # Unchanged: no Content-Type where the client sent none.
                skip_auto_headers=("Content-Type", "User-Agent"),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable("the predictor is unavailable") from exc
        return StreamingResponse(
            response.content.iter_any(),
            status_code=response.status,
            headers={
                k: v
                for k, v in response.headers.items()
                if k.lower() not in _NOT_FORWARDED and k.lower() != "x-request-id"
            },
            background=BackgroundTask(response.release),
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self.session.request(method, self.base_url + path, **kwargs) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable("the predictor is unavailable") from exc
        if status == 200:
            return orjson.loads(body)
        if status == 400:
            raise BadRequest(_error_of(body, status))
        if status == 404:
            raise NotFound("model version not found")
        raise UpstreamUnavailable(f"the predictor answered {status}")


def _error_of(body: bytes, status: int) -> str:
    try:
        return str(orjson.loads(body)["error"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"the predictor answered {status}"
