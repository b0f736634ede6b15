"""Routes KServe lacks: versioned v2 infer and ready, and model metadata that reports every
version (path taken, or why it is not served)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from kserve import ModelServer
from kserve.errors import ModelNotFound, ModelNotReady
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from kserve.protocol.rest.v2_endpoints import V2Endpoints

from agi_credit.predictor.codec import OUTPUTS
from agi_credit.predictor.errors import InvalidRequest
from agi_credit.predictor.model import PINNED_VERSION, AgiCreditModel
from agi_credit.predictor.versions import ServedVersion, ServingState
from agi_credit.store import InvalidVersionName, version_number

PLATFORM = "agi-credit-r"


def _version_info(served: ServedVersion) -> dict[str, Any]:
    return {
        "status": "serving",
        "created_at": served.created_at,
        "path": served.path,
        "features": list(served.schema.features),
        "decision_threshold": served.threshold,
        "sha256": served.sha256,
        "parity_gap": served.parity_gap,
        "note": served.note,
    }


def model_metadata(name: str, state: ServingState, version: str | None = None) -> dict[str, Any]:
    """v2 model metadata, with our extension `parameters`: every version's status. Without
    a version it answers even when the current version is broken, to say why."""
    if version is not None:
        inputs = state.resolve(version).schema.metadata()
    else:
        inputs = state.served[state.current].schema.metadata() if state.current else []
    versions: dict[str, Any] = {v: _version_info(s) for v, s in state.served.items()}
    versions |= {v: {"status": "unavailable", "error": why} for v, why in state.unavailable.items()}
    return {
        "name": name,
        "versions": sorted(state.served, key=version_number),
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": OUTPUTS,
        "parameters": {
            "current_version": state.current,
            "store_current_version": state.store_current,
            "model_versions": dict(
                sorted(versions.items(), key=lambda item: version_number(item[0]))
            ),
        },
    }


def add_routes(app: FastAPI, server: ModelServer, model: AgiCreditModel) -> None:
    endpoints = V2Endpoints(server.dataplane, server.model_repository_extension)

    def check(model_name: str, version: str | None = None) -> None:
        if model_name != model.name:
            raise ModelNotFound(model_name)
        if version is not None:
            try:
                version_number(version)
            except InvalidVersionName as exc:
                raise InvalidRequest(str(exc)) from exc

    async def metadata(model_name: str) -> dict[str, Any]:
        check(model_name)
        return model_metadata(model.name, model.registry.state)

    async def version_metadata(model_name: str, model_version: str) -> dict[str, Any]:
        check(model_name, model_version)
        return model_metadata(model.name, model.registry.state, model_version)

    async def version_ready(model_name: str, model_version: str) -> dict[str, Any]:
        check(model_name, model_version)
        state = model.registry.state
        if model_version not in state.served:
            raise ModelNotReady(model_name, state.unavailable.get(model_version, "unknown version"))
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
