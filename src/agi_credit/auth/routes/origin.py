"""The origin's API: predict, model info, login, and token verification for gateways."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

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
from agi_credit.store import VERSION_PATTERN

_PREDICT_BODY = Body(None)
# Required, although `Body(None)`: StreamedBodyRoute leaves it unread, and _predict reads it.
_REQUIRED_BODY: dict[str, Any] = {"requestBody": {"required": True}}

# /predict first: routes are matched in order, and it is the busiest.
_predict_router = APIRouter(route_class=StreamedBodyRoute)


async def _predict(request: Request, user: str, version: str | None) -> Response:
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
    return Response(answer(scores, is_batch=is_batch), media_type="application/json")


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
