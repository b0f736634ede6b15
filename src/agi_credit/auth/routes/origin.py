"""The origin's API: predict, model info, login, and token verification for gateways."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from agi_credit.auth.dependencies import CurrentUser, is_admin, services
from agi_credit.auth.errors import BadGateway, NotFound, TooManyRequests, Unauthorized
from agi_credit.auth.predict_body import answer, read_applicants
from agi_credit.auth.routes.json_body import JsonBodyRoute, StreamedBodyRoute
from agi_credit.auth.schemas import (
    Error,
    Login,
    ModelDetails,
    ModelEntry,
    ModelInfo,
    PredictBody,
    Prediction,
    Token,
    Verified,
)
from agi_credit.auth.upstream import sidecar_headers
from agi_credit.auth.v2_binary import Scores
from agi_credit.store import VERSION_PATTERN

_PREDICT_BODY = Body(None)
# Required, although `Body(None)`: StreamedBodyRoute leaves it unread, and _predict reads it.
_REQUIRED_BODY: dict[str, Any] = {"requestBody": {"required": True}}

# /predict first: routes are matched in order, and it is the busiest.
_predict_router = APIRouter(route_class=StreamedBodyRoute)


ANSWER_PIECE_BYTES = 1 << 20
"""The answer goes to the server this much at a time: uvicorn waits for the client to take
a piece before it accepts the next, so its write buffer never holds a copy of the whole
answer (40 MB at the size limit) after the slot is released."""
CLIENT_CLOSED_REQUEST = 499
"""For the access log (nginx's code): the client left before its body was read."""


def predict_slots(request: Request) -> asyncio.Semaphore:
    """MAX_CONCURRENT_PREDICTS slots, made by the app's lifespan (in the server's loop): a
    /predict holds one from reading its body until its answer is sent, so the sidecar's
    memory is bounded by the slots, not by the clients (docs/reliability.md)."""
    slots: asyncio.Semaphore = request.app.state.predict_slots
    return slots


class _Answer(Response):
    """/predict's JSON answer, sent a piece at a time, which gives its slot back once it is
    sent (or once sending failed): the answer is the largest part of a request's memory."""

    media_type = "application/json"

    def __init__(self, content: memoryview, slot: asyncio.Semaphore) -> None:
        super().__init__(content)
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._send(send)
        finally:
            self.body = b""  # the answer's memory goes before its slot does
            self._slot.release()
        if self.background is not None:
            await self.background()

    async def _send(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        body = memoryview(self.body)
        for offset in range(0, len(body), ANSWER_PIECE_BYTES):
            end = offset + ANSWER_PIECE_BYTES
            more = end < len(body)
            await send({"type": "http.response.body", "body": body[offset:end], "more_body": more})


async def _predict(request: Request, user: str, version: str | None) -> Response:
    # The token is checked already (the route's dependencies run first): a request without
    # one never waits here. One that waits leaves its body unread, in the socket.
    slot = predict_slots(request)
    await slot.acquire()  # a waiter cancelled here holds nothing
    try:
        scores, is_batch = await _score(request, user, version)
        return _Answer(answer(scores, is_batch=is_batch), slot)  # releases it once sent
    except ClientDisconnect:
        slot.release()
        return Response(status_code=CLIENT_CLOSED_REQUEST)  # no one to answer; no traceback
    except BaseException:
        slot.release()
        raise


async def _score(request: Request, user: str, version: str | None) -> tuple[Scores, bool]:
    """The body's applicants scored by the predictor, and whether the body was a batch."""
    applicants = await read_applicants(request.stream(), request.headers.get("content-type"))
    if version is not None and not VERSION_PATTERN.fullmatch(version):
        raise NotFound("model version not found")
    rows, is_batch = applicants.rows, applicants.is_batch
    scoring = services(request).predictor.infer(
        applicants.columns, version=version, headers=sidecar_headers(request, user)
    )
    del applicants  # the coroutine has the columns now, and drops them once they are sent
    scores = await scoring
    if len(scores.prob) != rows or len(scores.labels) != rows:
        raise BadGateway("unexpected answer from the predictor")
    return scores, is_batch


@_predict_router.post(
    "/predict",
    tags=["models"],
    response_model=Prediction | list[Prediction],
    responses={404: {"model": Error}},
    openapi_extra=_REQUIRED_BODY,
)
async def predict(
    request: Request,
    user: CurrentUser,
    body: PredictBody = _PREDICT_BODY,
    version: str | None = None,
) -> Response:
    """Score one applicant (an object of features) or a batch (a list of them) with the
    current version, or `?version=vN`."""
    return await _predict(request, user, version)


@_predict_router.post(
    "/predict/{version}",
    tags=["models"],
    response_model=Prediction | list[Prediction],
    responses={404: {"model": Error}},
    openapi_extra=_REQUIRED_BODY,
)
async def predict_version(
    request: Request, user: CurrentUser, version: str, body: PredictBody = _PREDICT_BODY
) -> Response:
    """Score with version `vN`."""
    return await _predict(request, user, version)


router = APIRouter(route_class=JsonBodyRoute)
router.include_router(_predict_router)


async def _model_info(request: Request, user: str, version: str | None) -> ModelInfo | ModelEntry:
    predictor = services(request).predictor
    parameters = (await predictor.metadata(headers=sidecar_headers(request, user))).parameters
    models = [
        ModelEntry(
            version=name,
            created_at=info.created_at,
            features=info.features,
            engine=info.engine,
        )
        for name, info in parameters.model_versions.items()
        if info.status == "serving"
    ]
    if version is None:
        info = ModelInfo(current_version=parameters.current_version, models=models)
        if is_admin(request):
            info.details = ModelDetails(
                store_current_version=parameters.store_current_version,
                reload_error=parameters.reload_error,
                versions=parameters.model_versions,
            )
        return info
    for model in models:
        if model.version == version:
            return model
    raise NotFound("model version not found")


@router.get(
    "/model-info",
    tags=["models"],
    responses={404: {"model": Error}},
    response_model_exclude_unset=True,  # `details` only for admins
)
async def model_info(
    request: Request, user: CurrentUser, version: str | None = None
) -> ModelInfo | ModelEntry:
    """The versions the predictor serves; `?version=vN` for one of them. With the admin
    role, `details`: every version, failed ones with their error, and artifact hashes."""
    return await _model_info(request, user, version)


@router.get("/model_info", include_in_schema=False, response_model_exclude_unset=True)
async def model_info_alias(
    request: Request, user: CurrentUser, version: str | None = None
) -> ModelInfo | ModelEntry:
    return await _model_info(request, user, version)


async def _count_login_attempt(request: Request) -> None:
    """One more attempt for the client's address; 429 beyond its limit. A dependency, so
    that it counts before the body is validated."""
    client = request.client.host if request.client else "unknown"
    if wait := services(request).logins_per_client.acquire(client):
        raise TooManyRequests(wait)


@router.post(
    "/login",
    tags=["auth"],
    dependencies=[Depends(_count_login_attempt)],
    responses={429: {"model": Error}},
)
async def login(credentials: Login, request: Request) -> Token:
    """Exchange a user name and password for a JWT."""
    shared, username = services(request), credentials.username
    # The failure is counted before the password is checked, and forgiven on success: a
    # burst of concurrent guesses cannot pass the limit while their checks run.
    if wait := shared.failures_per_user.acquire(username):
        raise TooManyRequests(wait)
    if not await shared.config.users.check(username, credentials.password):
        raise Unauthorized("invalid credentials")
    shared.failures_per_user.reset(username)
    request.state.user = username
    return Token(token=shared.config.issuer.issue(username, shared.config.users.scopes(username)))


@router.get("/auth/verify", tags=["auth"])
@router.post("/auth/verify", tags=["auth"])
@router.head("/auth/verify", tags=["auth"])
async def verify(user: CurrentUser, response: Response) -> Verified:
    """For gateways that delegate authentication (ingress auth-url, Envoy ext_authz):
    200 with `X-Auth-User`, or 401."""
    response.headers["X-Auth-User"] = user
    return Verified(user=user)
