"""The KServe model `agi-credit`: small on purpose. Decoding lives in `codec`, scoring in
`scorers`, version selection in `versions`."""

from __future__ import annotations

import asyncio
import logging
import time
from contextvars import ContextVar
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput, ModelNotFound
from kserve.protocol.infer_type import InferRequest, InferResponse

from agi_credit.predictor.codec import (
    OUTPUTS,
    decode_v1,
    decode_v2,
    encode_explanation,
    encode_v1,
    encode_v2,
)
from agi_credit.predictor.errors import ExplanationUnavailable, InvalidRequest
from agi_credit.predictor.observability import LATENCY, REQUESTS, ROWS
from agi_credit.predictor.scorers import CompiledGlm
from agi_credit.predictor.versions import RThread, ServedVersion, VersionRegistry
from agi_credit.store import InvalidVersionName

log = logging.getLogger("agi_credit.predictor")

PINNED_VERSION: ContextVar[str | None] = ContextVar("pinned_version", default=None)
"""Set by the versioned REST routes; gRPC requests carry `model_version` themselves."""


class AgiCreditModel(Model):
    def __init__(self, name: str, *, registry: VersionRegistry, r: RThread) -> None:
        super().__init__(name)
        self.registry = registry
        self.r = r

    def load(self) -> bool:
        # Ready when any version is served: a broken current version must not take the
        # pinned ones down with it (its requests get a 404 that says why).
        self.ready = bool(self.registry.refresh().served)
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        state = self.registry.state
        return state.served[state.current].schema.metadata() if state.current else []

    def get_output_types(self) -> list[dict[str, Any]]:
        return OUTPUTS

    async def predict(
        self, payload: dict[str, Any] | InferRequest, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | InferResponse:
        if isinstance(payload, InferRequest):
            protocol = "grpc" if payload.from_grpc else "v2"
            pinned = payload.model_version or PINNED_VERSION.get()
        else:
            protocol, pinned = "v1", PINNED_VERSION.get()
        with _Observed(protocol, pinned, headers) as observed:
            served = self._resolve(pinned)
            observed.served = served
            if isinstance(payload, InferRequest):
                matrix = decode_v2(payload, served.schema)
            else:
                matrix = decode_v1(payload, served.schema)
            observed.rows = len(matrix)
            prob = await self._score(served, matrix)
            if isinstance(payload, InferRequest):
                return encode_v2(
                    payload,
                    model_name=self.name,
                    version=served.version,
                    prob=prob,
                    threshold=served.threshold,
                )
            return encode_v1(version=served.version, prob=prob, threshold=served.threshold)

    async def explain(
        self, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise InvalidRequest("explanations take v1 instances")
        with _Observed("v1-explain", PINNED_VERSION.get(), headers) as observed:
            served = self._resolve(PINNED_VERSION.get())
            observed.served = served
            scorer = served.scorer
            if not isinstance(scorer, CompiledGlm):
                raise ExplanationUnavailable(
                    f"reason codes are defined for recipe + glm models; {served.version} is "
                    f"scored in R ({served.note})"
                )
            matrix = decode_v1(payload, served.schema)
            observed.rows = len(matrix)
            return encode_explanation(
                version=served.version,
                features=served.schema.features,
                matrix=matrix,
                prob=scorer.score(matrix),
                intercept=scorer.intercept,
                contributions=scorer.contributions(matrix),
            )

    def _resolve(self, version: str | None) -> ServedVersion:
        try:
            return self.registry.state.resolve(version)
        except InvalidVersionName as exc:
            raise InvalidRequest(str(exc)) from exc

    async def _score(self, served: ServedVersion, matrix: np.ndarray) -> np.ndarray:
        if served.scorer.path == "compiled":
            return served.scorer.score(matrix)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.r.executor, served.scorer.score, matrix)


class _Observed:
    """Counts, times and logs one request: version, path, rows, latency; never the body."""

    def __init__(self, protocol: str, pinned: str | None, headers: dict[str, str] | None) -> None:
        self.protocol = protocol
        self.pinned = pinned
        self.request_id = (headers or {}).get("x-request-id")
        self.served: ServedVersion | None = None
        self.rows = 0

    def __enter__(self) -> _Observed:
        self.started = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _tb: object
    ) -> None:
        seconds = time.perf_counter() - self.started
        outcome = (
            "ok"
            if kind is None
            else "invalid"
            if issubclass(kind, InvalidInput)
            else "unavailable"
            if issubclass(kind, ModelNotFound)
            else "error"
        )
        version = self.served.version if self.served else (self.pinned or "none")
        path = self.served.path if self.served else "none"
        REQUESTS.labels(version, path, self.protocol, outcome).inc()
        if outcome == "ok":
            LATENCY.labels(version, path, self.protocol).observe(seconds)
            ROWS.labels(version, path).inc(self.rows)
        log.log(
            logging.INFO if outcome == "ok" else logging.WARNING,
            "inference",
            extra={
                "event": "inference",
                "request_id": self.request_id,
                "protocol": self.protocol,
                "model_version": version,
                "path": path,
                "rows": self.rows,
                "outcome": outcome,
                "latency_ms": round(seconds * 1000, 3),
                **({"error": str(error)} if error is not None and outcome != "error" else {}),
            },
        )
