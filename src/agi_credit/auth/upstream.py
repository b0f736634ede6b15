"""The predictor, seen from the sidecar: one pooled keep-alive HTTP client on localhost, and
the headers that may reach it."""

from __future__ import annotations

import logging
import uuid
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import orjson
import pydantic
import yarl
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.responses import StreamingResponse

from agi_credit._asgi import current_request_id
from agi_credit.auth.errors import (
    ApiError,
    BadGateway,
    BadRequest,
    InternalError,
    NotFound,
    NotImplementedByModel,
    UpstreamUnavailable,
)
from agi_credit.auth.v2_binary import (
    HEADER_LENGTH,
    MalformedAnswer,
    Scores,
    decode_response,
    encode_request,
)
from agi_credit.model_metadata import ModelMetadata

log = logging.getLogger("agi_credit.auth")

Header = tuple[str, str]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers of one connection, not of the request (RFC 9110 §7.6.1): never forwarded."""

_SET_BY_THE_SIDECARS_SERVER = frozenset({"date", "server", "x-request-id"})
"""Of a predictor's answer passed through: what the sidecar's own server sets (one `Date`,
no `Server`) and its request id."""

# What the predictor may believe comes from the sidecar alone; a client's copy is dropped.
_SET_BY_THE_SIDECAR = frozenset({"host", "authorization", "x-request-id", "forwarded", "x-real-ip"})
_SET_BY_THE_SIDECAR_PREFIXES = ("x-auth-", "x-forwarded-")


def _connection_bound(headers: Iterable[Header]) -> frozenset[str]:
    """Hop-by-hop headers and the ones a `Connection` header names."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return HOP_BY_HOP | named


def client_headers(headers: Headers) -> list[Header]:
    """The client's headers that may pass to the predictor: no hop-by-hop header (nor one its
    `Connection` names), no credentials, nothing the sidecar sets itself (`X-Auth-*`,
    `X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `X-Request-Id`, `Host`)."""
    dropped = _connection_bound(headers.items()) | _SET_BY_THE_SIDECAR
    return [
        (name, value)
        for name, value in headers.items()
        if name not in dropped and not name.startswith(_SET_BY_THE_SIDECAR_PREFIXES)
    ]


def sidecar_headers(request: Request, user: str) -> list[Header]:
    """What the sidecar tells the predictor about a request, from the connection rather than
    from the client's headers: its id, the authenticated user, and where it came from."""
    client = request.scope.get("client")
    server = request.scope.get("server")
    host = request.headers.get("host") or (f"{server[0]}:{server[1]}" if server else "")
    return [
        ("x-request-id", request_id()),
        ("x-auth-user", user),
        ("x-forwarded-for", client[0] if client else ""),
        ("x-forwarded-proto", request.scope.get("scheme", "http")),
        ("x-forwarded-host", host),
    ]


def request_id() -> str:
    """The id of the request being handled (set by the access log middleware)."""
    return current_request_id.get() or uuid.uuid4().hex


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
        self, columns: Mapping[str, array[float]], *, version: str | None, headers: list[Header]
    ) -> Scores:
        """Score rows (one array of doubles per feature) with the predictor's v2 endpoint,
        binary tensors both ways (`v2_binary`): the probabilities, the labels and the version
        that scored them."""
        path = f"/v2/models/{self.model_name}" + (f"/versions/{version}" if version else "")
        body, content_headers = encode_request(columns, request_id=request_id())
        answer, answer_headers = await self._exchange(
            "POST", f"{path}/infer", data=body, headers=[*content_headers.items(), *headers]
        )
        del body
        try:
            return decode_response(answer, answer_headers.get(HEADER_LENGTH))
        except MalformedAnswer as exc:
            raise BadGateway("unexpected answer from the predictor") from exc

    async def metadata(self, *, headers: list[Header]) -> ModelMetadata:
        """The model's v2 metadata, every version's status among its parameters."""
        payload = await self._call("GET", f"/v2/models/{self.model_name}", headers=headers)
        try:
            return ModelMetadata.model_validate(payload)
        except pydantic.ValidationError as exc:
            raise UpstreamUnavailable("the predictor's model metadata is not valid") from exc

    async def ready(self) -> bool:
        try:
            async with self.session.get(
                f"{self.base_url}/v2/health/ready", timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def forward(self, request: Request, *, headers: list[Header]) -> StreamingResponse:
        """Pass a request through: the path exactly as the client sent it (still
        percent-encoded) with its query, the client's headers (`client_headers`) and then
        `headers`; bodies streamed both ways."""
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
                headers=[*client_headers(request.headers), *headers],
                data=request.stream(),
                allow_redirects=False,
                # Unchanged: no Content-Type where the client sent none.
                skip_auto_headers=("Content-Type", "User-Agent"),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable("the predictor is unavailable") from exc
        if response.status >= 500:
            response.release()  # its body (a traceback, an R message) stays in its log
            raise upstream_failure(response.status)
        dropped = _connection_bound(response.headers.items()) | _SET_BY_THE_SIDECARS_SERVER
        return StreamingResponse(
            response.content.iter_any(),
            status_code=response.status,
            headers={k: v for k, v in response.headers.items() if k.lower() not in dropped},
            background=BackgroundTask(response.release),
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        body, _ = await self._exchange(method, path, **kwargs)
        return orjson.loads(body)

    async def _exchange(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[bytes, Mapping[str, str]]:
        """The body and headers of the predictor's 200; its other answers as our errors."""
        try:
            async with self.session.request(method, self.base_url + path, **kwargs) as response:
                status, body, headers = response.status, await response.read(), response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable("the predictor is unavailable") from exc
        if status == 200:
            return body, headers
        if status == 404:
            raise NotFound("model version not found")
        if 400 <= status < 500:
            raise _client_error(status, body)
        raise upstream_failure(status)


def upstream_failure(status: int) -> ApiError:
    """What a client is told of a predictor's failure: its status and a plain message, never
    the predictor's body (KServe's `Type : message`, an R error, a traceback). The
    predictor's log has the details under the same request id."""
    log.warning(
        f"the predictor answered {status}; its log has the details",
        extra={"event": "upstream_error", "upstream_status": status},
    )
    if status == 503:
        return UpstreamUnavailable("the predictor is not ready")
    if status == 501:
        return NotImplementedByModel("not implemented for this model")
    if status >= 500:
        return InternalError("internal error")
    return BadGateway(f"unexpected answer from the predictor ({status})")


def _client_error(status: int, body: bytes) -> ApiError:
    """A predictor's 4xx for the client: its own message (ours: never a value), its status."""
    error = ApiError(_error_of(body, status))
    error.status_code = status
    return error


def _error_of(body: bytes, status: int) -> str:
    try:
        return str(orjson.loads(body)["error"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"the predictor answered {status}"
