"""The predictor room: a KServe runtime for R models (v1, v2 REST and gRPC)."""

from __future__ import annotations

from agi_credit.predictor.server import serve

__all__ = ["serve"]
