"""Structured JSON logs and Prometheus metrics of the predictor. Never a request body."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "agi_credit_inference_requests",
    "Inference requests by model version, scoring path, protocol and outcome.",
    ["model_version", "path", "protocol", "outcome"],
)
LATENCY = Histogram(
    "agi_credit_inference_seconds",
    "Time to decode, validate, score and encode one inference request.",
    ["model_version", "path", "protocol"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
ROWS = Counter(
    "agi_credit_scored_rows", "Rows scored, by model version and path.", ["model_version", "path"]
)
