"""Every malformed request gets a 400 that names the problem, before anything reaches R."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.bodies import APPLICANT, FEATURES, tensor, v2_binary, v2_with
from tests.servers import Server

V2_CASES = {
    "missing feature": (v2_with(AMT_CREDIT=None), "missing features: ['AMT_CREDIT']"),
    "unexpected feature": (
        {"inputs": [*v2_with()["inputs"], tensor("CNT_CHILDREN", [0])]},
        "unexpected features: ['CNT_CHILDREN']",
    ),
    "text datatype": (
        v2_with(AMT_CREDIT=tensor("AMT_CREDIT", ["abc"], datatype="BYTES")),
        "input AMT_CREDIT has datatype BYTES; expected one of FP64, FP32, INT64, INT32",
    ),
    "text in a number tensor": (
        v2_with(AMT_CREDIT=tensor("AMT_CREDIT", ["abc"])),
        "input AMT_CREDIT: ",
    ),
    "mismatched lengths": (
        v2_with(AMT_CREDIT=tensor("AMT_CREDIT", [1.0, 2.0])),
        "tensor lengths differ",
    ),
    "shape does not fit data": (
        v2_with(AMT_CREDIT=tensor("AMT_CREDIT", [1.0, 2.0], shape=[3])),
        "AMT_CREDIT",
    ),
    "2-D feature tensor": (
        v2_with(AMT_CREDIT=tensor("AMT_CREDIT", [1.0, 2.0], shape=[1, 2])),
        "input AMT_CREDIT has shape [1, 2]; a feature tensor is 1-D [rows]",
    ),
    "wrong matrix width": (
        {"inputs": [tensor("x", [1.0, 2.0, 3.0], shape=[1, 3])]},
        "input x has shape [1, 3]; send one [rows, 4] tensor",
    ),
    "empty batch": ({"inputs": [tensor(f, []) for f in FEATURES]}, "empty batch"),
    "no inputs": ({"inputs": []}, "the request has no inputs"),
    "duplicate input": (
        {"inputs": [*v2_with()["inputs"], tensor("AMT_CREDIT", [1.0])]},
        "duplicate inputs: ['AMT_CREDIT']",
    ),
}


@pytest.mark.parametrize(("body", "message"), V2_CASES.values(), ids=V2_CASES.keys())
def test_bad_v2_requests_get_400_with_the_reason(
    server: Server, body: dict[str, Any], message: str
) -> None:
    response = httpx.post(f"{server.url}/v2/models/agi-credit/infer", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


V1_CASES = {
    "missing feature": (
        {"instances": [{k: v for k, v in APPLICANT.items() if k != "DAYS_BIRTH"}]},
        "instance 0: missing features: ['DAYS_BIRTH']",
    ),
    "unexpected feature": (
        {"instances": [{**APPLICANT, "CNT_CHILDREN": 1}]},
        "instance 0: unexpected features: ['CNT_CHILDREN']",
    ),
    "text value": (
        {"instances": [APPLICANT, {**APPLICANT, "AMT_CREDIT": "200000"}]},
        "invalid type for AMT_CREDIT in instance 1: expected a number",
    ),
    "boolean value": (
        {"instances": [{**APPLICANT, "AMT_CREDIT": True}]},
        "invalid type for AMT_CREDIT in instance 0",
    ),
    "short list": ({"instances": [[1.0, 2.0]]}, "instance 0 has 2 values; expected 4"),
    "empty batch": ({"instances": []}, "empty batch"),
    "not instances": ({"rows": [APPLICANT]}, 'the body must be {"instances": [...]}'),
    "scalar instance": ({"instances": [5]}, "instance 0 must be an object of features"),
}


@pytest.mark.parametrize(("body", "message"), V1_CASES.values(), ids=V1_CASES.keys())
def test_bad_v1_requests_get_400_with_the_reason(
    server: Server, body: dict[str, Any], message: str
) -> None:
    response = httpx.post(f"{server.url}/v1/models/agi-credit:predict", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("value", "status", "message"),
    [
        (float("nan"), 200, None),  # AMT_GOODS_PRICE is imputed by the recipe
        (float("inf"), 400, "feature AMT_GOODS_PRICE has infinite values"),
    ],
)
def test_nan_is_imputed_where_the_recipe_imputes_and_inf_is_refused(
    server: Server, value: float, status: int, message: str | None
) -> None:
    body, headers = v2_binary({**APPLICANT, "AMT_GOODS_PRICE": value})
    response = httpx.post(f"{server.url}/v2/models/agi-credit/infer", content=body, headers=headers)
    assert response.status_code == status, response.text
    if message:
        assert message in response.json()["error"]


def test_missing_values_are_refused_where_the_model_cannot_impute(server: Server) -> None:
    body, headers = v2_binary({"AMT_CREDIT": float("nan"), "DAYS_BIRTH": -9000.0})
    response = httpx.post(
        f"{server.url}/v2/models/agi-credit/versions/v3/infer", content=body, headers=headers
    )
    assert response.status_code == 400
    assert "feature AMT_CREDIT has missing (NaN/null) values" in response.json()["error"]


def test_unknown_and_malformed_versions(server: Server) -> None:
    unknown = httpx.post(f"{server.url}/v2/models/agi-credit/versions/v9/infer", json=v2_with())
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "unknown version v9; served: v1, v2, v3"
    malformed = httpx.post(
        f"{server.url}/v2/models/agi-credit/versions/latest/infer", json=v2_with()
    )
    assert malformed.status_code == 400
    assert "invalid version name 'latest'" in malformed.json()["error"]
    other_model = httpx.post(f"{server.url}/v2/models/other/versions/v1/infer", json=v2_with())
    assert other_model.status_code == 404


def test_not_json_is_a_400(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/models/agi-credit:predict",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert re.search(r"error|detail", response.text)
