"""A deployed stack, seen from outside through its only door, the auth sidecar: the origin's
API, a v2 client, predictions equal to R's on the same artifact, and a retrain, a rollback
and a promotion that the running predictor follows."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.bodies import APPLICANT, FEATURES
from tests.conftest import r_predictions
from tests.e2e.conftest import Stack

RECIPE_GLM = "predict(m$fit, bake(m$recipe, new_data = nd), type = 'response')"
APPLICANTS = [
    APPLICANT,
    {
        "AMT_INCOME_TOTAL": 270000.0,
        "AMT_CREDIT": 1.0e6,
        "DAYS_BIRTH": -9000.0,
        "AMT_GOODS_PRICE": 9e5,
    },
    {
        "AMT_INCOME_TOTAL": 67500.0,
        "AMT_CREDIT": 45000.0,
        "DAYS_BIRTH": -25229.0,
        "AMT_GOODS_PRICE": 4e4,
    },
]


def current_version(stack: Stack, headers: dict[str, str]) -> str | None:
    response = httpx.get(f"{stack.url}/model-info", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["current_version"]


def wait_for_current(stack: Stack, headers: dict[str, str], version: str) -> float:
    """Seconds until the predictor serves `version` as current (at most 60)."""
    started = time.monotonic()
    while (now := current_version(stack, headers)) != version:
        assert time.monotonic() - started < 60, f"still serving {now}, not {version}"
        time.sleep(0.2)
    return time.monotonic() - started


def test_health_is_public(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{stack.url}/ready").status_code == 200


def test_login_then_model_info(stack: Stack, headers: dict[str, str]) -> None:
    info = httpx.get(f"{stack.url}/model-info", headers=headers).json()
    assert info["current_version"] in {m["version"] for m in info["models"]}
    assert all(m["features"] == FEATURES for m in info["models"])
    assert httpx.get(f"{stack.url}/model-info").status_code == 401


def test_predict_equals_r_on_the_same_artifact(
    stack: Stack, headers: dict[str, str], tmp_path: Path
) -> None:
    version = current_version(stack, headers)
    rds = tmp_path / f"model_{version}.rds"
    # $MODEL_STORE: /mnt/store in compose, /mnt/store/<persistence.subPath> from the chart
    rds.write_bytes(stack.run("sh", "-c", f'cat "$MODEL_STORE/models/model_{version}.rds"'))
    columns = {f: [row[f] for row in APPLICANTS] for f in FEATURES}
    want = r_predictions(rds, columns, RECIPE_GLM)
    response = httpx.post(f"{stack.url}/predict", json=APPLICANTS, headers=headers)
    assert response.status_code == 200, response.text
    got = response.json()
    assert {p["model_version"] for p in got} == {version}
    np.testing.assert_allclose([p["prob_default"] for p in got], want, rtol=0, atol=1e-12)


def test_a_v2_client_through_the_sidecar(stack: Stack, headers: dict[str, str]) -> None:
    client = triton.InferenceServerClient(stack.url.removeprefix("http://"))
    inputs = []
    for name in FEATURES:
        tensor = triton.InferInput(name, [len(APPLICANTS)], "FP64")
        tensor.set_data_from_numpy(np.array([row[name] for row in APPLICANTS]), binary_data=True)
        inputs.append(tensor)
    try:
        # tritonclient adds its own entries to the dict it is given: pass a copy.
        result = client.infer("agi-credit", inputs, headers=dict(headers))
        metadata = client.get_model_metadata("agi-credit", headers=dict(headers))
    finally:
        client.close()
    prob = result.as_numpy("prob_default")
    assert prob.shape == (len(APPLICANTS),) and ((prob > 0) & (prob < 1)).all()
    assert [i["name"] for i in metadata["inputs"]] == FEATURES


def test_a_grpc_v2_client_through_the_sidecar(stack: Stack, headers: dict[str, str]) -> None:
    client = triton_grpc.InferenceServerClient(stack.grpc)
    inputs = []
    for name in FEATURES:
        tensor = triton_grpc.InferInput(name, [len(APPLICANTS)], "FP64")
        tensor.set_data_from_numpy(np.array([row[name] for row in APPLICANTS]))
        inputs.append(tensor)
    try:
        with pytest.raises(InferenceServerException) as refused:
            client.infer("agi-credit", inputs)  # no token
        assert str(refused.value.status()) == "StatusCode.UNAUTHENTICATED"
        auth = {"authorization": headers["Authorization"]}
        prob = client.infer("agi-credit", inputs, headers=auth).as_numpy("prob_default")
    finally:
        client.close()
    rest = httpx.post(f"{stack.url}/predict", json=APPLICANTS, headers=headers).json()
    assert prob.tolist() == [p["prob_default"] for p in rest]


def test_a_retrain_is_served_without_a_restart(stack: Stack, headers: dict[str, str]) -> None:
    before = current_version(stack, headers)
    out = stack.run("agi-credit", "train", "--synthetic").decode()
    assert "promoted to current version" in out, out
    new = out.split("registered ", 1)[1].split(":", 1)[0]
    assert new != before
    print(f"retrained: {before} -> {new} served in {wait_for_current(stack, headers, new):.1f} s")


def test_rollback_and_promote_are_followed(stack: Stack, headers: dict[str, str]) -> None:
    latest = current_version(stack, headers)
    assert latest is not None
    stack.run("agi-credit", "rollback", "--reason", "e2e")
    previous = current_version(stack, headers)
    deadline = time.monotonic() + 60
    while previous == latest:
        assert time.monotonic() < deadline, "the rollback was not followed"
        time.sleep(0.2)
        previous = current_version(stack, headers)
    stack.run("agi-credit", "promote", latest, "--reason", "e2e")
    wait_for_current(stack, headers, latest)
    response = httpx.post(f"{stack.url}/predict", json=APPLICANT, headers=headers)
    assert response.json()["model_version"] == latest
