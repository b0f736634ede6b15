"""The origin's REST API through the sidecar, and authenticated pass-through to v1/v2."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.bodies import APPLICANT, FEATURES, v1_body
from tests.predictor.test_scorers import bits, filler
from tests.servers import ADMIN, ADMIN_PASSWORD, USER, Sidecar


def test_health_is_public_and_ready_checks_the_predictor(sidecar: Sidecar) -> None:
    assert httpx.get(f"{sidecar.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{sidecar.url}/ready").json() == {"status": "ready"}


def test_login_gives_a_token_with_every_claim(sidecar: Sidecar) -> None:
    import jwt

    from tests.servers import SECRET

    claims = jwt.decode(sidecar.token(), SECRET, algorithms=["HS256"], audience="agi-credit-api")
    assert claims["sub"] == USER and claims["iss"] == "agi-credit"
    assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]
    assert claims["scope"] == "predict"
    assert len(claims["jti"]) == 32


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"username": USER}, 400, "missing field: password"),
        ({"password": "x"}, 400, "missing field: username"),
        ({"username": USER, "password": 123}, 400, "invalid type for password"),
        ([USER, "x"], 400, 'the body must be {"username": ..., "password": ...}'),
        ({"username": USER, "password": "wrong password"}, 401, "invalid credentials"),
        ({"username": "nobody", "password": "wrong password"}, 401, "invalid credentials"),
    ],
)
def test_bad_logins(sidecar: Sidecar, body: object, status: int, error: str) -> None:
    response = httpx.post(f"{sidecar.url}/login", json=body)
    assert response.status_code == status
    assert response.json() == {"error": error}


@pytest.mark.parametrize(
    "content", [b'{"AMT_CREDIT": 1e400}', b'{"AMT_CREDIT": NaN}', b"AMT_CREDIT=1", b""]
)
def test_a_non_json_predict_is_a_400_after_the_token_check(
    sidecar: Sidecar, content: bytes
) -> None:
    url, json = f"{sidecar.url}/predict", {"content-type": "application/json"}
    response = httpx.post(url, content=content, headers={**sidecar.headers(), **json})
    assert response.status_code == 400 and response.json() == {"error": "the body must be JSON"}
    anonymous = httpx.post(url, content=content, headers=json)
    assert anonymous.status_code == 401 and anonymous.json() == {"error": "token missing"}


def test_a_non_json_login_is_a_400(sidecar: Sidecar) -> None:
    response = httpx.post(
        f"{sidecar.url}/login",
        content=b"username=admin",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400 and response.json() == {"error": "the body must be JSON"}


def test_model_info_lists_the_served_versions(sidecar: Sidecar) -> None:
    headers = sidecar.headers()
    info = httpx.get(f"{sidecar.url}/model-info", headers=headers).json()
    assert info["current_version"] == "v2"
    assert [m["version"] for m in info["models"]] == ["v1", "v2", "v3"]
    assert info["models"][0]["features"] == list(APPLICANT)
    assert len(info["models"][0]["created_at"]) == len("YYYY-MM-DD HH:MM:SS")
    assert [m["engine"] for m in info["models"]] == ["compiled", "compiled", "r"]
    assert all(set(m) == {"version", "created_at", "features", "engine"} for m in info["models"])
    alias = httpx.get(f"{sidecar.url}/model_info", headers=headers).json()
    assert alias == info
    one = httpx.get(f"{sidecar.url}/model-info", params={"version": "v1"}, headers=headers)
    assert one.json()["version"] == "v1"
    missing = httpx.get(f"{sidecar.url}/model-info", params={"version": "v9"}, headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {"error": "model version not found"}


def test_predict_answers_as_the_origin_did(sidecar: Sidecar) -> None:
    headers = sidecar.headers()
    response = httpx.post(f"{sidecar.url}/predict", json=APPLICANT, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"model_version", "prediction", "prob_default"}
    assert body["model_version"] == "v2" and body["prediction"] in (0, 1)
    direct = httpx.post(
        f"{sidecar.predictor.url}/v1/models/agi-credit:predict", json=v1_body()
    ).json()["predictions"][0]
    assert body["prob_default"] == direct["prob_default"]


def test_predict_pins_versions_and_scores_batches(sidecar: Sidecar) -> None:
    headers = sidecar.headers()
    by_query = httpx.post(
        f"{sidecar.url}/predict", params={"version": "v1"}, json=APPLICANT, headers=headers
    ).json()
    by_path = httpx.post(f"{sidecar.url}/predict/v1", json=APPLICANT, headers=headers).json()
    assert by_query == by_path and by_path["model_version"] == "v1"
    batch = httpx.post(
        f"{sidecar.url}/predict",
        json=[APPLICANT, {**APPLICANT, "AMT_CREDIT": 900000}],
        headers=headers,
    ).json()
    assert isinstance(batch, list) and len(batch) == 2
    assert batch[0]["prob_default"] != batch[1]["prob_default"]


def test_predict_gives_an_applicant_the_same_bits_in_any_batch(sidecar: Sidecar) -> None:
    """/predict (v2 binary to the predictor), alone or in a batch, and tritonclient's v2
    binary through the pass-through: one applicant, one score."""
    batch = filler(2000, seed=12)
    batch[np.isnan(batch)] = 1.0  # the origin's /predict takes no missing values
    applicants = [dict(zip(FEATURES, row, strict=True)) for row in batch.tolist()]
    headers = sidecar.headers()

    def predict(body: object) -> np.ndarray:
        response = httpx.post(f"{sidecar.url}/predict", json=body, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        answers = response.json()
        listed = answers if isinstance(answers, list) else [answers]
        return np.array([a["prob_default"] for a in listed])

    together = predict(applicants)
    for i in (0, 1, 999, 1999):
        assert bits(predict(applicants[i])) == bits(together[i : i + 1])
    client = triton.InferenceServerClient(f"127.0.0.1:{sidecar.port}", network_timeout=60)
    inputs = []
    for j, name in enumerate(FEATURES):
        tensor = triton.InferInput(name, [len(batch)], "FP64")
        tensor.set_data_from_numpy(np.ascontiguousarray(batch[:, j]), binary_data=True)
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput("prob_default", binary_data=True)]
    v2 = client.infer("agi-credit", inputs, outputs=outputs, headers=headers)
    client.close()
    assert bits(v2.as_numpy("prob_default")) == bits(together)


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (
            "/predict",
            {k: v for k, v in APPLICANT.items() if k != "DAYS_BIRTH"},
            400,
            "missing features: ['DAYS_BIRTH']",
        ),
        (
            "/predict",
            {**APPLICANT, "CNT_CHILDREN": 1},
            400,
            "unexpected features: ['CNT_CHILDREN']",
        ),
        ("/predict", {**APPLICANT, "AMT_CREDIT": "200000"}, 400, "invalid type for AMT_CREDIT"),
        ("/predict", {**APPLICANT, "AMT_CREDIT": None}, 400, "invalid type for AMT_CREDIT"),
        ("/predict", {**APPLICANT, "AMT_CREDIT": True}, 400, "invalid type for AMT_CREDIT"),
        ("/predict", [], 400, "empty batch: send at least one applicant"),
        ("/predict", [APPLICANT, {"AMT_CREDIT": 1}], 400, "missing features"),
        (
            "/predict",
            [APPLICANT, {**APPLICANT, "CNT_CHILDREN": 1}],
            400,
            "unexpected features: ['CNT_CHILDREN'] (row 1)",
        ),
        ("/predict", [APPLICANT, [1, 2]], 400, "the body must be an object of features or a"),
        ("/predict", "applicant", 400, "the body must be an object of features or a list"),
        ("/predict", {}, 400, "no features in the request"),
        ("/predict?version=latest", APPLICANT, 404, "model version not found"),
        ("/predict/v9", APPLICANT, 404, "model version not found"),
        ("/predict/latest", APPLICANT, 404, "model version not found"),
    ],
)
def test_predict_errors(sidecar: Sidecar, path: str, body: object, status: int, error: str) -> None:
    response = httpx.post(f"{sidecar.url}{path}", json=body, headers=sidecar.headers())
    assert response.status_code == status, response.text
    assert error in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/predict",
        "/model-info",
        "/v2/models/agi-credit",
        "/v2/health/ready",
        "/v1/models/agi-credit",
    ],
)
def test_everything_but_health_and_login_needs_a_token(sidecar: Sidecar, path: str) -> None:
    method = "POST" if path == "/predict" else "GET"
    response = httpx.request(method, f"{sidecar.url}{path}", json=APPLICANT)
    assert response.status_code == 401
    assert response.json() == {"error": "token missing"}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_through_the_sidecar(sidecar: Sidecar, binary: bool) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{sidecar.port}")
    inputs = []
    for name, value in APPLICANT.items():
        tensor = triton.InferInput(name, [2], "FP64")
        tensor.set_data_from_numpy(np.array([value, value * 2.0]), binary_data=binary)
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput("prob_default", binary_data=binary)]
    result = client.infer(
        "agi-credit", inputs, outputs=outputs, model_version="v1", headers=sidecar.headers()
    )
    direct = triton.InferenceServerClient(sidecar.predictor.host).infer(
        "agi-credit", inputs, outputs=outputs, model_version="v1"
    )
    np.testing.assert_array_equal(result.as_numpy("prob_default"), direct.as_numpy("prob_default"))
    with pytest.raises(InferenceServerException, match="token missing"):
        client.infer("agi-credit", inputs)
    client.close()


def test_v1_pass_through_keeps_status_and_body(sidecar: Sidecar) -> None:
    headers = sidecar.headers()
    good = httpx.post(
        f"{sidecar.url}/v1/models/agi-credit:predict", json=v1_body(), headers=headers
    )
    assert good.status_code == 200 and good.json()["predictions"][0]["model_version"] == "v2"
    bad = httpx.post(
        f"{sidecar.url}/v1/models/agi-credit:predict", json={"instances": []}, headers=headers
    )
    assert bad.status_code == 400 and "empty batch" in bad.json()["error"]


def test_auth_verify_for_gateways(sidecar: Sidecar) -> None:
    ok = httpx.get(f"{sidecar.url}/auth/verify", headers=sidecar.headers())
    assert ok.status_code == 200 and ok.headers["x-auth-user"] == USER
    assert httpx.get(f"{sidecar.url}/auth/verify").status_code == 401
    bad = httpx.get(f"{sidecar.url}/auth/verify", headers={"Authorization": "Bearer x.y.z"})
    assert bad.status_code == 401 and bad.json() == {"error": "invalid token"}


def test_the_request_id_reaches_the_predictor(sidecar: Sidecar) -> None:
    response = httpx.post(
        f"{sidecar.url}/predict",
        json=APPLICANT,
        headers={**sidecar.headers(), "x-request-id": "trace-me-42"},
    )
    assert response.headers["x-request-id"] == "trace-me-42"
    assert any(line.get("request_id") == "trace-me-42" for line in sidecar.predictor.records())


def test_access_log_has_users_and_never_secrets(sidecar: Sidecar) -> None:
    token = sidecar.token()
    httpx.post(
        f"{sidecar.url}/predict",
        json=APPLICANT,
        headers={"Authorization": f"Bearer {token}", "x-request-id": "log-test-7"},
    )
    # The access line is written once the response has gone: wait for it a moment.
    deadline, mine = time.monotonic() + 5, []
    while not mine and time.monotonic() < deadline:
        mine = [line for line in sidecar.records() if line.get("request_id") == "log-test-7"]
        time.sleep(0.05)
    assert mine and mine[0]["user"] == USER and mine[0]["status"] == 200
    assert {"method", "path", "latency_ms"} <= set(mine[0])
    logs = sidecar.logs()
    assert token not in logs
    assert "correct horse" not in logs
    assert "200000" not in logs  # no request body


def test_openapi_documents_the_routes_and_bodies_from_their_models(sidecar: Sidecar) -> None:
    spec = httpx.get(f"{sidecar.url}/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/health",
        "/login",
        "/model-info",
        "/predict",
        "/predict/{version}",
        "/auth/verify",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
        "/v1/models/{name}:predict",
    ):
        assert path in paths, path
    assert not [path for path in paths if "{path}" in path]  # no catch-all
    schemas = spec["components"]["schemas"]
    assert paths["/login"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Login"
    }
    assert schemas["Login"]["required"] == ["username", "password"]
    assert schemas["Login"]["examples"] == [{"username": "admin", "password": "123456"}]
    predict = paths["/predict"]["post"]
    assert predict["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictBody"
    }
    one, batch = schemas["PredictBody"]["oneOf"]
    assert one["type"] == "object" and one["additionalProperties"] == {"type": "number"}
    assert batch["type"] == "array" and batch["minItems"] == 1
    assert predict["security"] == [{"HTTPBearer": []}]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "security" not in paths["/login"]["post"]
    assert httpx.get(f"{sidecar.url}/docs").status_code == 200


def test_kserve_routes_off_the_allow_list_are_404_and_the_model_stays(sidecar: Sidecar) -> None:
    headers = sidecar.headers()
    for path in ("/v2/repository/models/agi-credit/unload", "/v2/repository/index"):
        refused = httpx.post(f"{sidecar.url}{path}", headers=headers)
        assert refused.status_code == 404 and refused.json() == {"error": "not found"}
    predicted = httpx.post(f"{sidecar.url}/predict", json=APPLICANT, headers=headers)
    assert predicted.status_code == 200, predicted.text
    ready = httpx.get(f"{sidecar.url}/v2/models/agi-credit/ready", headers=headers)
    assert ready.status_code == 200 and ready.json()["ready"] is True


@pytest.mark.parametrize(
    "path",
    [
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/agi-credit",
        "/v2/models/agi-credit/ready",
        "/v2/models/agi-credit/versions/v1",
        "/v2/models/agi-credit/versions/v1/ready",
        "/v1/models/agi-credit",
    ],
)
def test_allowed_kserve_reads_answer_as_the_predictor_does(sidecar: Sidecar, path: str) -> None:
    """For an admin, unchanged (others do not see the metadata's hashes and load errors)."""
    admin = {"Authorization": f"Bearer {sidecar.token(ADMIN, ADMIN_PASSWORD)}"}
    through = httpx.get(f"{sidecar.url}{path}", headers=admin)
    direct = httpx.get(f"{sidecar.predictor.url}{path}")
    assert through.status_code == direct.status_code == 200
    assert through.json() == direct.json()


def test_v1_explain_passes_through(sidecar: Sidecar) -> None:
    path = "/v1/models/agi-credit:explain"
    through = httpx.post(f"{sidecar.url}{path}", json=v1_body(), headers=sidecar.headers())
    direct = httpx.post(f"{sidecar.predictor.url}{path}", json=v1_body())
    assert through.status_code == direct.status_code == 200
    assert through.json() == direct.json()
