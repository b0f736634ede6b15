"""Routes KServe lacks or gets wrong for us: versioned v2 infer, ready and metadata; model
metadata that reports every version (its engine, or why it is not served); and server
readiness that is false whenever the model cannot score (KServe's is always true)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from kserve import ModelServer
from kserve.errors import ModelNotFound, ModelNotReady
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from kserve.protocol.rest.v2_endpoints import V2Endpoints

from agi_credit.model_metadata import ModelMetadata, ModelParameters, VersionInfo
from agi_credit.predictor.codec import OUTPUTS
from agi_credit.predictor.errors import check_version_name
from agi_credit.predictor.model import PINNED_VERSION, AgiCreditModel
from agi_credit.predictor.state import ServedVersion, ServingState
from agi_credit.store import version_number

PLATFORM = "agi-credit-r"


def _version_info(served: ServedVersion, store_problem: str | None) -> VersionInfo:
    return VersionInfo(
        status="serving",
        created_at=served.created_at,
        engine=served.engine,
        features=list(served.schema.features),
        decision_threshold=served.threshold,
        sha256=served.sha256,
        parity_gap=served.parity_gap,
        note=served.note,
        store_problem=store_problem,
    )


def model_metadata(
    name: str, state: ServingState, version: str | None = None, *, reload_error: str | None = None
) -> ModelMetadata:
    """v2 model metadata, with our extension `parameters`: every version's status. Without
    a version it answers even when the current version is broken, to say why."""
    if version is not None:
        inputs = state.resolve(version).schema.metadata()
    else:
        inputs = state.served[state.current].schema.metadata() if state.current else []
    versions = {v: _version_info(s, state.damaged.get(v)) for v, s in state.served.items()}
    versions |= {
        v: VersionInfo(status="unavailable", error=why) for v, why in state.unavailable.items()
    }
    return ModelMetadata(
        name=name,
        versions=sorted(state.served, key=version_number),
        platform=PLATFORM,
        inputs=inputs,
        outputs=OUTPUTS,
        parameters=ModelParameters(
            current_version=state.current,
            store_current_version=state.store_current,
            model_versions=dict(sorted(versions.items(), key=lambda kv: version_number(kv[0]))),
            reload_error=reload_error,
        ),
    )


def add_routes(app: FastAPI, server: ModelServer, model: AgiCreditModel) -> None:
    endpoints = V2Endpoints(server.dataplane, server.model_repository_extension)

    def check(model_name: str, version: str | None = None) -> None:
        if model_name != model.name:
            raise ModelNotFound(model_name)
        if version is not None:
            check_version_name(version)

    def metadata_of(version: str | None) -> dict[str, Any]:
        registry = model.registry
        described = model_metadata(
            model.name, registry.state, version, reload_error=registry.reload_error
        )
        return described.model_dump(mode="json")

    async def server_ready() -> Response:
        if await server.registered_models.is_model_ready(model.name):
            return JSONResponse({"ready": True})
        why = (
            model.why_not_ready()
            if model.name in server.registered_models.get_models()
            else f"model {model.name} is not loaded"
        )
        return JSONResponse({"ready": False, "error": why}, status_code=503)

    async def metadata(model_name: str) -> dict[str, Any]:
        check(model_name)
        return metadata_of(None)

    async def version_metadata(model_name: str, model_version: str) -> dict[str, Any]:
        check(model_name, model_version)
        return metadata_of(model_version)

    async def version_ready(model_name: str, model_version: str) -> dict[str, Any]:
        check(model_name, model_version)
        state = model.registry.state
        if model_version in state.unavailable:  # 503: the store has it, it failed to load
            raise ModelNotReady(model_name, state.unavailable[model_version])
        state.resolve(model_version)  # 404 for a version the store does not have
        return {"name": model_name, "ready": True}

    async def version_infer(
        raw_request: Request,
        raw_response: Response,
        model_name: str,
        model_version: str,
        request_body: InferenceRequest | bytes,
    ) -> Any:
        check(model_name, model_version)
        token = PINNED_VERSION.set(model_version)
        try:
            return await endpoints.infer(raw_request, raw_response, model_name, request_body)
        finally:
            PINNED_VERSION.reset(token)

    app.add_api_route("/v2/health/ready", server_ready, methods=["GET"], tags=["agi-credit"])
    prefix = "/v2/models/{model_name}"
    app.add_api_route(prefix, metadata, methods=["GET"], tags=["agi-credit"])
    app.add_api_route(
        prefix + "/versions/{model_version}", version_metadata, methods=["GET"], tags=["agi-credit"]
    )
    app.add_api_route(
        prefix + "/versions/{model_version}/ready",
        version_ready,
        methods=["GET"],
        tags=["agi-credit"],
    )
    app.add_api_route(
        prefix + "/versions/{model_version}/infer",
        version_infer,
        methods=["POST"],
        response_model=None,
        tags=["agi-credit"],
    )
