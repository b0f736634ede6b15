"""The KServe model `agi-credit`: small on purpose. Decoding lives in `codec`, scoring in
`scorers`, loading in `loader`, version selection in `registry` and `state`."""

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

from agi_credit._asgi import current_request_id, sane_request_id
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
from agi_credit.predictor.registry import VersionRegistry
from agi_credit.predictor.scorers import CompiledGlm
from agi_credit.predictor.state import ServedVersion
from agi_credit.rruntime import RThread

log = logging.getLogger("agi_credit.predictor")

PINNED_VERSION: ContextVar[str | None] = ContextVar("pinned_version", default=None)
"""Set by the versioned REST routes; gRPC requests carry `model_version` themselves."""


class AgiCreditModel(Model):
    def __init__(self, name: str, *, registry: VersionRegistry, r: RThread) -> None:
        self.registry = registry
        self.r = r
        self._loaded = False
        super().__init__(name)

    @property
    def ready(self) -> bool:
        """Loaded (KServe's flag: false once unloaded) and able to score: any version is
        served. A broken current version must not take the pinned ones down with it (its
        requests get a 404 that says why)."""
        return self._loaded and self.registry.state.can_score

    @ready.setter
    def ready(self, loaded: bool) -> None:
        self._loaded = loaded

    def load(self) -> bool:
        """Load what the store has. A store that cannot be read yet is not fatal: the
        watcher keeps trying, and the model is ready once a version is served."""
        try:
            self.registry.refresh()
        except Exception as exc:  # reported as the reason it is not ready
            self.registry.record_failure(exc)
        self.ready = True
        return self.ready

    def why_not_ready(self) -> str:
        """Why no request can be scored, for readiness answers and logs."""
        if not self._loaded:
            return f"model {self.name} is not loaded"
        reason = self.registry.state.why_not_ready()
        if self.registry.reload_error:
            reason += f" (reading the store failed: {self.registry.reload_error})"
        return reason

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
            if payload.from_grpc:  # no ASGI middleware on gRPC: the id comes from metadata
                current_request_id.set(sane_request_id((headers or {}).get("x-request-id")))
        else:
            protocol, pinned = "v1", PINNED_VERSION.get()
        with _Observed(protocol, pinned) as observed:
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
        with _Observed("v1-explain", PINNED_VERSION.get()) as observed:
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
                log_odds=scorer.log_odds(matrix),
                intercept=scorer.intercept,
                contributions=scorer.contributions(matrix),
            )

    def _resolve(self, version: str | None) -> ServedVersion:
        return self.registry.state.resolve(version)

    async def _score(self, served: ServedVersion, matrix: np.ndarray) -> np.ndarray:
        if served.engine == "compiled":
            return served.scorer.score(matrix)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.r.executor, served.scorer.score, matrix)


class _Observed:
    """Counts, times and logs one request: version, engine, rows, latency; never the body.
    The log filter adds the request id."""

    def __init__(self, protocol: str, pinned: str | None) -> None:
        self.protocol = protocol
        self.pinned = pinned
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
        engine = self.served.engine if self.served else "none"
        REQUESTS.labels(version, engine, self.protocol, outcome).inc()
        if outcome == "ok":
            LATENCY.labels(version, engine, self.protocol).observe(seconds)
            ROWS.labels(version, engine).inc(self.rows)
        log.log(
            logging.INFO if outcome == "ok" else logging.WARNING,
            "inference",
            extra={
                "event": "inference",
                "protocol": self.protocol,
                "model_version": version,
                "engine": engine,
                "rows": self.rows,
                "outcome": outcome,
                "latency_ms": round(seconds * 1000, 3),
                **({"error": str(error)} if error is not None and outcome != "error" else {}),
            },
        )
