"""A real predictor answers v2 (REST JSON and binary, gRPC) and v1 as R would, and gives a
row the same bits on every protocol, alone or in any batch."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from hypothesis import given
from kserve import (
    InferenceGRPCClient,
    InferenceRESTClient,
    InferInput,
    InferRequest,
    RESTConfig,
)

from agi_credit.store import ModelStore
from tests.bodies import FEATURES, v1_body, v1_lists, v2_columns
from tests.conftest import r_predictions
from tests.hostile import fuzzed
from tests.predictor.test_scorers import bits, filler, placed_rows
from tests.servers import Server

ROWS = {
    "AMT_INCOME_TOTAL": [5000.0, 135000.0, np.nan, 1.17e8, 270000.0],
    "AMT_CREDIT": [200000.0, 513531.0, 45000.0, 4.05e6, 1.0e6],
    "DAYS_BIRTH": [-12000.0, -20000.0, -7489.0, -25229.0, -9000.0],
    "AMT_GOODS_PRICE": [180000.0, np.nan, 40500.0, 4.05e6, 900000.0],
}
RECIPE_GLM = "predict(m$fit, bake(m$recipe, new_data = nd), type = 'response')"


@pytest.fixture(scope="module")
def expected(serving_store: ModelStore) -> dict[str, np.ndarray]:
    """R's own predictions of each recipe + glm version on ROWS."""
    return {
        v: r_predictions(serving_store.artifact_path(v), ROWS, RECIPE_GLM) for v in ("v1", "v2")
    }


def triton_inputs(binary: bool) -> list[triton.InferInput]:
    inputs = []
    for name, values in ROWS.items():
        tensor = triton.InferInput(name, [len(values)], "FP64")
        tensor.set_data_from_numpy(np.array(values), binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("version", [None, "v1", "v2"])
def test_tritonclient_gets_rs_predictions(
    server: Server, expected: dict[str, np.ndarray], binary: bool, version: str | None
) -> None:
    client = triton.InferenceServerClient(server.host)
    outputs = [
        triton.InferRequestedOutput(n, binary_data=binary) for n in ("prob_default", "prediction")
    ]
    result = client.infer(
        "agi-credit", triton_inputs(binary), outputs=outputs, model_version=version or ""
    )
    served = version or "v2"
    prob = result.as_numpy("prob_default")
    np.testing.assert_allclose(prob, expected[served], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(result.as_numpy("prediction"), (prob >= 0.5).astype(int))
    assert result.get_response()["parameters"]["model_version"] == served
    client.close()


def test_one_matrix_in_feature_order_is_accepted(
    server: Server, expected: dict[str, np.ndarray]
) -> None:
    matrix = np.column_stack([ROWS[f] for f in FEATURES])
    tensor = triton.InferInput("features", list(matrix.shape), "FP64")
    tensor.set_data_from_numpy(matrix, binary_data=True)
    client = triton.InferenceServerClient(server.host)
    result = client.infer("agi-credit", [tensor])
    np.testing.assert_allclose(result.as_numpy("prob_default"), expected["v2"], atol=1e-12)
    client.close()


@pytest.mark.parametrize(
    ("datatype", "dtype"), [("INT64", np.int64), ("INT32", np.int32), ("FP32", np.float32)]
)
def test_other_numeric_datatypes_are_coerced(
    server: Server, serving_store: ModelStore, datatype: str, dtype: type
) -> None:
    row = {
        "AMT_INCOME_TOTAL": 135000,
        "AMT_CREDIT": 513531,
        "DAYS_BIRTH": -20000,
        "AMT_GOODS_PRICE": 450000,
    }
    client = triton.InferenceServerClient(server.host)
    inputs = []
    for name, value in row.items():
        tensor = triton.InferInput(name, [1], datatype)
        tensor.set_data_from_numpy(np.array([value], dtype=dtype))
        inputs.append(tensor)
    got = client.infer("agi-credit", inputs).as_numpy("prob_default")
    want = r_predictions(
        serving_store.artifact_path("v2"), {k: [float(v)] for k, v in row.items()}, RECIPE_GLM
    )
    np.testing.assert_allclose(got, want, atol=1e-7 if datatype == "FP32" else 1e-12)
    client.close()


def test_kserve_rest_and_grpc_clients(server: Server, expected: dict[str, np.ndarray]) -> None:
    def request(version: str | None = None) -> InferRequest:
        inputs = []
        for name, values in ROWS.items():
            tensor = InferInput(name, [len(values)], "FP64")
            tensor.set_data_from_numpy(np.array(values))
            inputs.append(tensor)
        return InferRequest(
            model_name="agi-credit", infer_inputs=inputs, request_id="t-1", model_version=version
        )

    async def call() -> None:
        rest = InferenceRESTClient(RESTConfig(protocol="v2"))
        response = await rest.infer(server.url, request(), model_name="agi-credit")
        np.testing.assert_allclose(response.outputs[0].as_numpy(), expected["v2"], atol=1e-12)
        await rest.close()
        grpc = InferenceGRPCClient(server.grpc_url)
        current = await grpc.infer(request())
        pinned = await grpc.infer(request("v1"))
        await grpc.close()
        np.testing.assert_allclose(current.outputs[0].as_numpy(), expected["v2"], atol=1e-12)
        np.testing.assert_allclose(pinned.outputs[0].as_numpy(), expected["v1"], atol=1e-12)
        assert pinned.model_version == "v1"

    asyncio.run(call())


def test_v1_predict_with_objects_and_lists(server: Server, expected: dict[str, np.ndarray]) -> None:
    objects = [
        {f: (None if np.isnan(ROWS[f][i]) else ROWS[f][i]) for f in FEATURES} for i in range(5)
    ]
    response = httpx.post(f"{server.url}/v1/models/agi-credit:predict", json=v1_body(objects))
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    np.testing.assert_allclose([p["prob_default"] for p in predictions], expected["v2"], atol=1e-12)
    assert {p["model_version"] for p in predictions} == {"v2"}
    as_lists = httpx.post(
        f"{server.url}/v1/models/agi-credit:predict",
        json=v1_lists(objects),
    )
    assert as_lists.json() == response.json()


def test_v1_model_status(server: Server) -> None:
    response = httpx.get(f"{server.url}/v1/models/agi-credit")
    assert response.status_code == 200
    assert response.json()["ready"] is True


def test_explain_gives_reason_codes_largest_adverse_first(server: Server) -> None:
    instance = {
        "AMT_INCOME_TOTAL": 5000,
        "AMT_CREDIT": 2.0e6,
        "DAYS_BIRTH": -8000,
        "AMT_GOODS_PRICE": None,
    }
    response = httpx.post(f"{server.url}/v1/models/agi-credit:explain", json=v1_body([instance]))
    assert response.status_code == 200, response.text
    (explanation,) = response.json()["explanations"]
    terms = [c["contribution"] for c in explanation["contributions"]]
    assert terms == sorted(terms, reverse=True)
    assert {c["feature"] for c in explanation["contributions"]} == set(FEATURES)
    log_odds = explanation["intercept"] + sum(terms)
    assert explanation["log_odds"] == pytest.approx(log_odds)
    assert explanation["prob_default"] == pytest.approx(1 / (1 + np.exp(-log_odds)))
    predicted = httpx.post(
        f"{server.url}/v1/models/agi-credit:predict", json=v1_body([instance])
    ).json()["predictions"][0]
    assert explanation["prob_default"] == predicted["prob_default"]


# --- the same bits everywhere ----------------------------------------------------------------


def v1_probs(server: Server, batch: np.ndarray) -> np.ndarray:
    """v1 JSON: missing values as null; Python writes floats that read back exactly."""
    instances = [[None if np.isnan(v) else v for v in row] for row in batch.tolist()]
    response = httpx.post(
        f"{server.url}/v1/models/agi-credit:predict", json={"instances": instances}, timeout=60
    )
    assert response.status_code == 200, response.text
    return np.array([p["prob_default"] for p in response.json()["predictions"]])


def triton_probs(server: Server, batch: np.ndarray, *, binary: bool) -> np.ndarray:
    client = triton.InferenceServerClient(server.host, network_timeout=60)
    inputs = []
    for j, name in enumerate(FEATURES):
        tensor = triton.InferInput(name, [len(batch)], "FP64")
        tensor.set_data_from_numpy(np.ascontiguousarray(batch[:, j]), binary_data=binary)
        inputs.append(tensor)
    output = triton.InferRequestedOutput("prob_default", binary_data=binary)
    result = client.infer("agi-credit", inputs, outputs=[output])
    client.close()
    return np.asarray(result.as_numpy("prob_default"), dtype=np.float64)


def grpc_probs(server: Server, batch: np.ndarray) -> np.ndarray:
    async def call() -> np.ndarray:
        inputs = []
        for j, name in enumerate(FEATURES):
            tensor = InferInput(name, [len(batch)], "FP64")
            tensor.set_data_from_numpy(np.ascontiguousarray(batch[:, j]))
            inputs.append(tensor)
        client = InferenceGRPCClient(server.grpc_url)
        response = await client.infer(InferRequest(model_name="agi-credit", infer_inputs=inputs))
        await client.close()
        return np.asarray(response.outputs[0].as_numpy(), dtype=np.float64)

    return asyncio.run(call())


def test_a_row_gets_the_same_bits_in_a_v2_binary_batch_as_alone_in_v1_json(
    server: Server,
) -> None:
    @given(placed_rows(max_rows=20_000))
    def check(placed: tuple[np.ndarray, int]) -> None:
        batch, i = placed
        together = triton_probs(server, batch, binary=True)
        alone = v1_probs(server, batch[i : i + 1])
        assert bits(together[i : i + 1]) == bits(alone)

    fuzzed(60)(check)()


def test_every_protocol_gives_every_row_the_same_bits(server: Server) -> None:
    batch = filler(3000, seed=11)
    v2_binary = triton_probs(server, batch, binary=True)
    assert bits(triton_probs(server, batch, binary=False)) == bits(v2_binary)
    assert bits(v1_probs(server, batch)) == bits(v2_binary)
    assert bits(grpc_probs(server, batch)) == bits(v2_binary)
    for i in (0, 1, 17, 1500, 2999):
        assert bits(v1_probs(server, batch[i : i + 1])) == bits(v2_binary[i : i + 1])


def test_requests_without_content_type_work(server: Server) -> None:
    body = json.dumps(v2_columns({f: ROWS[f][:1] for f in FEATURES}))
    url = f"{server.url}/v2/models/agi-credit/infer"
    request = httpx.Request("POST", url, content=body)
    assert "content-type" not in request.headers  # as tritonclient sends JSON
    with httpx.Client() as client:
        response = client.send(request)
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"]
        empty = client.post(url, content=body, headers={"content-type": ""})
        assert empty.status_code == 200, empty.text


def test_metadata_reports_every_version_and_its_engine(server: Server) -> None:
    client = triton.InferenceServerClient(server.host)
    metadata = client.get_model_metadata("agi-credit")
    client.close()
    assert metadata["versions"] == ["v1", "v2", "v3"]
    assert [i["name"] for i in metadata["inputs"]] == FEATURES
    assert [o["name"] for o in metadata["outputs"]] == ["prob_default", "prediction"]
    versions = metadata["parameters"]["model_versions"]
    assert metadata["parameters"]["current_version"] == "v2"
    assert versions["v1"]["engine"] == versions["v2"]["engine"] == "compiled"
    assert versions["v1"]["parity_gap"] <= 1e-9
    assert versions["v3"]["engine"] == "r"
    assert versions["v3"]["features"] == ["AMT_CREDIT", "DAYS_BIRTH"]
    pinned = httpx.get(f"{server.url}/v2/models/agi-credit/versions/v3").json()
    assert [i["name"] for i in pinned["inputs"]] == ["AMT_CREDIT", "DAYS_BIRTH"]
    assert httpx.get(f"{server.url}/v2/models/agi-credit/versions/v3/ready").json()["ready"]


def test_health_endpoints(server: Server) -> None:
    assert httpx.get(f"{server.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{server.url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{server.url}/v2/models/agi-credit/ready").json()["ready"] is True


def test_an_arbitrary_r_model_is_scored_in_r(server: Server, serving_store: ModelStore) -> None:
    rows = {"AMT_CREDIT": [2e5, 1e6, 4e4], "DAYS_BIRTH": [-9000.0, -21000.0, -15000.0]}
    want = r_predictions(
        serving_store.artifact_path("v3"), rows, "predict(m, newdata = nd, type = 'response')"
    )
    response = httpx.post(
        f"{server.url}/v2/models/agi-credit/versions/v3/infer",
        json=v2_columns(rows),
    )
    assert response.status_code == 200, response.text
    got = response.json()["outputs"][0]["data"]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_metrics_count_requests_per_version(server: Server) -> None:
    httpx.post(
        f"{server.url}/v1/models/agi-credit:predict", json={"instances": [[1.0, 2.0, 3.0, 4.0]]}
    )
    text = httpx.get(f"{server.url}/metrics").text
    assert (
        'agi_credit_inference_requests_total{engine="compiled",model_version="v2",outcome="ok",protocol="v1"}'
        in text
    )
    assert "agi_credit_inference_seconds_bucket" in text


def test_logs_are_json_with_request_ids_and_never_bodies(server: Server) -> None:
    marker = 424242.4242
    httpx.post(
        f"{server.url}/v1/models/agi-credit:predict",
        headers={"x-request-id": "req-test-logs-1"},
        json={"instances": [[marker, 2.0, 3.0, 4.0]]},
    )
    # Every line is JSON: ours, KServe's and uvicorn's.
    lines = [json.loads(line) for line in server.logs().splitlines() if line.strip()]
    mine = [line for line in lines if line.get("request_id") == "req-test-logs-1"]
    assert mine and mine[0]["event"] == "inference"
    assert {"model_version", "engine", "latency_ms", "rows"} <= set(mine[0])
    assert str(marker) not in server.logs()
