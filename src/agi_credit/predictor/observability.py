"""Structured JSON logs and Prometheus metrics of the predictor. Never a request body."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "agi_credit_inference_requests",
    "Inference requests by model version, scoring engine, protocol and outcome.",
    ["model_version", "engine", "protocol", "outcome"],
)
LATENCY = Histogram(
    "agi_credit_inference_seconds",
    "Time to decode, validate, score and encode one inference request.",
    ["model_version", "engine", "protocol"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
ROWS = Counter(
    "agi_credit_scored_rows",
    "Rows scored, by model version and engine.",
    ["model_version", "engine"],
)
RELOAD_ERRORS = Counter(
    "agi_credit_reload_errors",
    "Failed reloads of the model store: `store` (unreadable or invalid), `unexpected` (a bug).",
    ["kind"],
)
STORE_PROBLEMS = Gauge(
    "agi_credit_store_problems",
    "Problems with the model store now: `metadata` (1 while metadata.json cannot be used), "
    "`artifact` (served versions whose file is missing or changed; served from memory).",
    ["kind"],
)
