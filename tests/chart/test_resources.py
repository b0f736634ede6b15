"""Memory limits the chart derives from the documented bounds (docs/reliability.md): each
container's limit holds its worst case for the values it is given, so a request at the
limits is answered, not OOM-killed."""

from __future__ import annotations

from typing import Any

import argon2
import pytest
from kubernetes.utils.quantity import parse_quantity

from tests.chart.chart import Rendered, env_of, merged, predictor_of, predictor_pod, sidecar_of

MIB = 2**20
# docs/reliability.md, "Memory bounds" (measured 2026-12-08), with their margins: the
# sidecar at rest (87 MiB) and per call served at once (a /predict 1.83 x the body, a gRPC
# message at the limit up to 3.9 x: tests/auth/test_grpc_large_messages.py); the predictor
# at rest with R and one version (418 MiB), per JSON body at the limit parsed in R (8.0 x)
# and per row in R (329 B).
SIDECAR_IDLE = 128 * MIB
SIDECAR_PER_BODY = 4
PREDICTOR_BASE = 512 * MIB
PREDICTOR_PER_BODY = 10
PREDICTOR_PER_ROW = 384


def sidecar_worst_case(env: dict[str, Any]) -> int:
    argon2_check = argon2.PasswordHasher().memory_cost * 1024  # the sidecar's hasher, KiB
    return (
        SIDECAR_IDLE
        + int(env["MAX_CONCURRENT_PREDICTS"]) * SIDECAR_PER_BODY * int(env["MAX_REQUEST_BYTES"])
        + int(env["PASSWORD_HASH_WORKERS"]) * argon2_check
    )


def predictor_worst_case(env: dict[str, Any]) -> int:
    return (
        PREDICTOR_BASE
        + PREDICTOR_PER_BODY * int(env["MAX_REQUEST_BYTES"])
        + PREDICTOR_PER_ROW * int(env["MAX_BATCH_ROWS"])
    )


def memory_limit(container: dict[str, Any]) -> int:
    return int(parse_quantity(container["resources"]["limits"]["memory"]))


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"mode": "kserve"},
        {"auth": {"maxRequestBytes": 16 * MIB, "maxConcurrentPredicts": 4}},
        {"auth": {"passwordHashWorkers": 8}, "predictor": {"maxBatchRows": 5_000_000}},
        {"auth": {"maxRequestBytes": 256 * MIB, "maxConcurrentPredicts": 1}},
    ],
    ids=["default", "kserve", "small-bodies", "big-batches", "big-bodies"],
)
def test_derived_memory_limits_hold_each_containers_worst_case(values: dict[str, Any]) -> None:
    pod = predictor_pod(Rendered.of("limits", values))
    sidecar, predictor = sidecar_of(pod), predictor_of(pod)
    assert memory_limit(sidecar) >= sidecar_worst_case(env_of(sidecar))
    assert memory_limit(predictor) >= predictor_worst_case(env_of(predictor))
    # ...and not far above it: a derived limit is the bound, rounded up to the MiB
    assert memory_limit(sidecar) - sidecar_worst_case(env_of(sidecar)) < MIB
    assert memory_limit(predictor) - predictor_worst_case(env_of(predictor)) < MIB


def test_a_memory_limit_given_is_kept_and_notes_warn_when_it_is_below_the_bound() -> None:
    given = {"auth": {"resources": {"limits": {"memory": "256Mi"}}}}
    rendered = Rendered.of("given", given)
    sidecar = sidecar_of(predictor_pod(rendered))
    assert sidecar["resources"]["limits"]["memory"] == "256Mi"
    assert "auth.resources.limits.memory (256Mi) is below" in rendered.notes
    roomy = Rendered.of(
        "roomy", merged(given, {"auth": {"resources": {"limits": {"memory": "2Gi"}}}})
    )
    assert "is below" not in roomy.notes
