"""v2 gRPC behind the same JWT: tritonclient.grpc through the sidecar's gRPC port works with
a token in the `authorization` metadata and is refused without one (UNAUTHENTICATED), the
answers are the predictor's, and only the inference service's client methods get through.
(tritonclient.grpc runs in a process of its own: tests/auth/triton_grpc.py says why.)"""

from __future__ import annotations

import httpx
import pytest

from tests.bodies import APPLICANT, FEATURES
from tests.servers import Sidecar, triton_grpc

ROWS = [{name: float(APPLICANT[name]) for name in FEATURES}] * 2


def test_infer_metadata_and_ready_work_with_a_token(sidecar: Sidecar) -> None:
    auth = sidecar.headers()["Authorization"]
    calls = ["live", "ready", "model_ready", "metadata", "infer"]
    results = triton_grpc(
        sidecar.grpc_target, [{"method": m, "authorization": auth, "rows": ROWS} for m in calls]
    )
    assert all(r["ok"] for r in results), results
    live, ready, model_ready, metadata, infer = (r["result"] for r in results)
    assert live is True and ready is True and model_ready is True
    assert [i["name"] for i in metadata["inputs"]] == FEATURES
    assert len(infer) == 2 and 0 < infer[0] < 1 and infer[0] == infer[1]
    rest = httpx.post(f"{sidecar.url}/predict", json=APPLICANT, headers=sidecar.headers())
    assert infer[0] == rest.json()["prob_default"]  # the same bytes, the same model


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Basic YWRtaW46MTIzNDU2", "Bearer "],
    ids=["none", "garbage", "basic", "empty"],
)
def test_every_method_is_refused_without_a_valid_token(
    sidecar: Sidecar, authorization: str | None
) -> None:
    calls = ["live", "ready", "model_ready", "metadata", "infer"]
    results = triton_grpc(
        sidecar.grpc_target,
        [{"method": m, "authorization": authorization, "rows": ROWS} for m in calls],
    )
    for method, result in zip(calls, results, strict=True):
        assert result["status"] == "StatusCode.UNAUTHENTICATED", (method, result)


def test_repository_control_never_reaches_the_predictor(sidecar: Sidecar) -> None:
    auth = sidecar.headers()["Authorization"]
    calls = ["repository_index", "unload", "load", "model_ready"]
    results = triton_grpc(
        sidecar.grpc_target, [{"method": m, "authorization": auth} for m in calls]
    )
    assert [r.get("status") for r in results[:3]] == ["StatusCode.UNIMPLEMENTED"] * 3
    assert results[3] == {"ok": True, "result": True}  # still loaded


def test_bad_input_keeps_the_predictors_own_message(sidecar: Sidecar) -> None:
    auth = sidecar.headers()["Authorization"]
    short = [{name: row[name] for name in FEATURES[:-1]} for row in ROWS]  # one feature missing
    [result] = triton_grpc(
        sidecar.grpc_target, [{"method": "infer", "authorization": auth, "rows": short}]
    )
    assert result["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "missing" in result["message"]
