"""Hostile input to the predictor (#10, item 7): whatever a client sends, the answer is a
2xx or a 4xx with `{"error": ...}`, quickly, never a 5xx, a hang or a traceback, and no
version name reaches the store unless it is one (`vN`). The codec is fuzzed directly, then
every kind of input goes over HTTP to a real `agi-credit serve` scoring with R, which must
still serve a good request after each hostile batch."""

from __future__ import annotations

import contextlib
import json
import re
import socket
from typing import Any

import httpx
import numpy as np
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.rest.v2_datamodels import InferenceRequest

from agi_credit.predictor.codec import decode_v1, decode_v2, decode_v2_binary
from agi_credit.predictor.errors import InvalidRequest
from agi_credit.predictor.schema import FeatureSchema
from agi_credit.store import ModelStore
from tests.bodies import APPLICANT, FEATURES, v1_body, v2_body
from tests.conftest import snapshot
from tests.hostile import (
    BODY_ROUTES,
    INFER,
    MALFORMED_HEADERS,
    TIMEOUT,
    V1_PREDICT,
    BinaryRequest,
    RecordProperty,
    Target,
    assert_handled,
    assert_headers_too_large,
    assert_refused_by_the_parser,
    assert_still_serves,
    assert_version_answer,
    binary_requests,
    expected_request_id,
    fuzz_binary_requests,
    fuzz_json_bodies,
    fuzz_wrong_tensors,
    json_values,
    path_segment,
    post_json,
    raw_http,
    raw_request,
    request_ids,
    run_fuzzed,
    version_strings,
    wrong_tensors,
)
from tests.servers import Server

SCHEMA = FeatureSchema(
    features=tuple(FEATURES), nullable=frozenset({"AMT_GOODS_PRICE"}), max_rows=10
)
APPLICANT_ROW = [APPLICANT[f] for f in FEATURES]

CODEC_BINARY_EXAMPLES = 400
CODEC_RANDOM_BYTES_EXAMPLES = 300
CODEC_TENSOR_EXAMPLES = 300
CODEC_V1_EXAMPLES = 300
HTTP_BODY_EXAMPLES = 120
HTTP_TENSOR_EXAMPLES = 100
HTTP_BINARY_EXAMPLES = 120
HTTP_VERSION_EXAMPLES = 150
HTTP_REQUEST_ID_EXAMPLES = 80
"""Inputs each property tries (derandomized: the same ones on every run)."""


@pytest.fixture
def target(server: Server, record_property: RecordProperty) -> Target:
    """The predictor, for the properties both servers must hold (no token)."""
    return Target("predictor", server.url, record_property)


# --- the codec, called directly ---------------------------------------------------------


def test_the_binary_codec_reads_exact_lengths_and_refuses_any_other(
    record_property: RecordProperty,
) -> None:
    """A binary request decodes to the rows it carries when every length adds up; any
    wrong header length, `binary_data_size`, shape, datatype or body length is an
    `InvalidRequest` (a 400), never another exception (KServe's reader: a 500)."""

    @given(request=binary_requests())
    def check(request: BinaryRequest) -> None:
        length = request.headers["inference-header-content-length"]
        try:
            matrix = decode_v2(decode_v2_binary(request.body, length, model_name="m"), SCHEMA)
        except InvalidRequest as refused:
            assert not request.consistent, f"a good request refused: {refused}"
            return
        assert matrix.shape[1] == len(FEATURES)
        np.testing.assert_array_equal(matrix, [APPLICANT_ROW] * len(matrix))

    run_fuzzed(check, "codec: binary requests", CODEC_BINARY_EXAMPLES, record_property)


def test_random_bytes_never_break_the_binary_codec(record_property: RecordProperty) -> None:
    @given(
        body=st.binary(max_size=300),
        length=st.integers(-5, 400).map(str) | st.text(max_size=6) | st.none(),
    )
    def check(body: bytes, length: str | None) -> None:
        with contextlib.suppress(InvalidRequest):
            decode_v2(decode_v2_binary(body, length, model_name="m"), SCHEMA)

    run_fuzzed(check, "codec: random binary bodies", CODEC_RANDOM_BYTES_EXAMPLES, record_property)


def test_any_v2_tensors_decode_to_checked_rows_or_are_refused(
    record_property: RecordProperty,
) -> None:
    """Tensors of any shape, datatype, name and data: refused by the request model (a 422)
    or the codec (a 400), or decoded to finite rows (NaN only where the model imputes)."""

    @given(body=wrong_tensors())
    def check(body: dict[str, Any]) -> None:
        try:
            request = InferRequest.from_inference_request(
                InferenceRequest.model_validate(body), "m"
            )
            matrix = decode_v2(request, SCHEMA)
        except (pydantic.ValidationError, InvalidInput):
            return
        assert_checked_rows(matrix)

    run_fuzzed(check, "codec: v2 JSON tensors", CODEC_TENSOR_EXAMPLES, record_property)


def test_any_json_decodes_to_checked_v1_rows_or_is_refused(record_property: RecordProperty) -> None:
    @given(
        payload=json_values
        | st.fixed_dictionaries(
            {"instances": st.lists(json_values | st.just(APPLICANT) | st.just(APPLICANT_ROW))}
        )
    )
    def check(payload: Any) -> None:
        try:
            matrix = decode_v1(payload, SCHEMA)
        except InvalidRequest:
            return
        assert_checked_rows(matrix)

    run_fuzzed(check, "codec: v1 JSON", CODEC_V1_EXAMPLES, record_property)


def assert_checked_rows(matrix: np.ndarray) -> None:
    assert matrix.dtype == np.float64 and matrix.ndim == 2 and matrix.shape[1] == len(FEATURES)
    assert 1 <= len(matrix) <= SCHEMA.max_rows
    imputed = [f in SCHEMA.nullable for f in FEATURES]
    assert not np.isinf(matrix).any()
    assert not np.isnan(matrix[:, [not i for i in imputed]]).any()


# --- bodies, over HTTP ------------------------------------------------------------------


def test_hostile_json_bodies_get_a_4xx_never_a_5xx(target: Target) -> None:
    """NaN/Infinity literals, duplicate keys, deep nesting, invalid UTF-8, truncated, huge
    or arbitrary JSON, on every route that reads a body."""
    fuzz_json_bodies(target, BODY_ROUTES, examples=HTTP_BODY_EXAMPLES)


def test_wrong_tensor_shapes_names_and_datatypes_get_a_4xx(target: Target) -> None:
    fuzz_wrong_tensors(target, examples=HTTP_TENSOR_EXAMPLES)


def test_binary_requests_with_wrong_byte_lengths_get_a_400(target: Target) -> None:
    """The v2 binary extension: every length that does not add up is a 400 saying which."""
    fuzz_binary_requests(target, examples=HTTP_BINARY_EXAMPLES)


def binary_body(binary_data_size: object = 8, *, extra: bytes = b"") -> tuple[bytes, bytes]:
    """The applicant as binary tensors, the first one's `binary_data_size` replaced: the
    body and its JSON header."""
    inputs = [
        {"name": f, "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 8}}
        for f in FEATURES
    ]
    inputs[0]["parameters"] = {"binary_data_size": binary_data_size}
    head = json.dumps({"inputs": inputs}).encode()
    return head + np.array(APPLICANT_ROW, dtype="<f8").tobytes() + extra, head


BINARY_REGRESSIONS: dict[str, tuple[bytes, str, str]] = {
    # name: (body, Inference-Header-Content-Length, the error's start)
    "a header length that is not a number": (
        binary_body()[0],
        "abc",
        "inference-header-content-length must be a number of bytes",
    ),
    "a header length past the body": (
        binary_body()[0],
        "99999999999",
        "inference-header-content-length is 99999999999; the JSON header it measures",
    ),
    "a header length that cuts the JSON": (binary_body()[0], "10", "the JSON header of the"),
    "a JSON header without inputs": (b"{}", "2", "the JSON header of the binary request: inputs"),
    "a negative binary_data_size": (
        binary_body(-8)[0],
        str(len(binary_body(-8)[1])),
        "input AMT_INCOME_TOTAL: binary_data_size must be a number of bytes",
    ),
    "a text binary_data_size": (
        binary_body("8")[0],
        str(len(binary_body("8")[1])),
        "input AMT_INCOME_TOTAL: binary_data_size must be a number of bytes",
    ),
    "a fractional binary_data_size": (
        binary_body(1.5)[0],
        str(len(binary_body(1.5)[1])),
        "input AMT_INCOME_TOTAL: binary_data_size must be a number of bytes",
    ),
    "a binary_data_size beyond the body": (
        binary_body(10**30)[0],
        str(len(binary_body(10**30)[1])),
        f"input AMT_INCOME_TOTAL: binary_data_size is {10**30} bytes but only",
    ),
    "a binary_data_size that does not fit the shape": (
        binary_body(7)[0],
        str(len(binary_body(7)[1])),
        "input AMT_INCOME_TOTAL: binary_data_size is 7 bytes; shape [1] of FP64 takes 8",
    ),
    "bytes cut short": (
        binary_body()[0][:-3],
        str(len(binary_body()[1])),
        "input AMT_GOODS_PRICE: binary_data_size is 8 bytes but only 5 are left",
    ),
    "bytes after the last tensor": (
        binary_body(extra=b"xyz")[0],
        str(len(binary_body()[1])),
        "the body has 3 bytes after its binary tensors",
    ),
}
"""What KServe's reader answered with a 500 (ValueError, TypeError, KeyError) before the
codec read binary requests itself."""


@pytest.mark.parametrize(
    ("body", "length", "error"), BINARY_REGRESSIONS.values(), ids=BINARY_REGRESSIONS.keys()
)
def test_binary_lengths_that_do_not_add_up_say_which(
    server: Server, body: bytes, length: str, error: str
) -> None:
    response = httpx.post(
        f"{server.url}{INFER}",
        content=body,
        headers={"inference-header-content-length": length},
        timeout=TIMEOUT,
    )
    assert_handled(response, allowed=frozenset({400}))
    assert response.json()["error"].startswith(error), response.json()


GOOD = json.dumps(v2_body()).encode()
LITERALS: dict[str, tuple[str, bytes, int, str | None]] = {
    # name: (path, body, status, part of the error)
    "NaN where the recipe imputes": (
        INFER,
        GOOD.replace(b"180000.0", b"NaN"),
        200,
        None,
    ),
    "NaN where the model cannot impute": (
        "/v2/models/agi-credit/versions/v3/infer",
        json.dumps({"inputs": v2_body()["inputs"][1:3]}).encode().replace(b"200000.0", b"NaN"),
        400,
        "feature AMT_CREDIT has missing (NaN/null) values",
    ),
    "Infinity": (INFER, GOOD.replace(b"5000.0", b"Infinity"), 400, "infinite values"),
    "-Infinity": (INFER, GOOD.replace(b"5000.0", b"-Infinity"), 400, "infinite values"),
    "a number past the largest double": (INFER, GOOD.replace(b"5000.0", b"1e999"), 400, "infinite"),
    "v1 NaN: v1 reads strict JSON": (
        V1_PREDICT,
        json.dumps(v1_body()).encode().replace(b"180000.0", b"NaN"),
        400,
        "Unrecognized request format",
    ),
    "v1 Infinity": (
        V1_PREDICT,
        json.dumps(v1_body()).encode().replace(b"5000.0", b"Infinity"),
        400,
        "Unrecognized request format",
    ),
    "v1 a number past the largest double": (
        V1_PREDICT,
        json.dumps(v1_body()).encode().replace(b"5000.0", b"1e999"),
        400,
        "number is infinity",
    ),
    "duplicate inputs: the last counts (a good one)": (
        INFER,
        b'{"inputs": [], ' + GOOD[1:],
        200,
        None,
    ),
    "duplicate inputs: the last counts (an empty one)": (
        INFER,
        GOOD[:-1] + b', "inputs": []}',
        400,
        "the request has no inputs",
    ),
    "a duplicate datatype: the last counts": (
        INFER,
        GOOD.replace(b'"datatype": "FP64"', b'"datatype": "BYTES", "datatype": "FP64"', 1),
        200,
        None,
    ),
    "v1 duplicate instances: the last counts": (
        V1_PREDICT,
        json.dumps(v1_body()).encode()[:-1] + b', "instances": 5}',
        400,
        '"instances"',
    ),
}
"""JSON's NaN and Infinity literals (v2 JSON is read by Python's JSON reader, which takes
them: NaN is a missing value; v1 by orjson, which refuses them) and duplicate keys (the last
one counts, as in every JSON reader here, the sidecar's included)."""


@pytest.mark.parametrize(
    ("path", "body", "status", "error"), LITERALS.values(), ids=LITERALS.keys()
)
def test_nan_infinity_literals_and_duplicate_keys(
    target: Target, path: str, body: bytes, status: int, error: str | None
) -> None:
    response = post_json(target, path, body)
    assert_handled(response, allowed=frozenset({status}))
    if error is not None:
        assert error in response.json()["error"], response.json()


LARGE_BODIES: dict[str, tuple[bytes, int, str]] = {
    "100,000 nested arrays": (b"[" * 100_000 + b"]" * 100_000, 400, "error parsing the body"),
    "100,000 nested objects, unclosed": (b'{"a":' * 100_000, 400, "error parsing the body"),
    "a feature of 2,000,000 values": (
        json.dumps({"inputs": [{"name": "x", "shape": [2_000_000], "datatype": "FP64"}]})
        .encode()
        .replace(b"}]}", b', "data": [' + b"1.5," * 1_999_999 + b"1.5]}]}"),
        400,
        "input x has shape [2000000]",
    ),
    "a 10 MB feature name": (
        json.dumps({"inputs": [{"name": "x" * 10_000_000, "shape": [1], "datatype": "FP64"}]})
        .encode()
        .replace(b"}]}", b', "data": [1]}]}'),
        400,
        "has shape [1]",
    ),
    "UTF-32, which no JSON reader here takes": (
        GOOD.decode().encode("utf-32-be")[:-3] + b"\xff\xff\xff",
        400,
        "error parsing the body",
    ),
    "Latin-1 text in a name": (GOOD.replace(b"AMT_CREDIT", b"AMT_CR\xc9DIT"), 400, "error parsing"),
}
"""Huge, deeply nested and non-UTF-8 bodies (each within the 64 MiB body limit)."""


@pytest.mark.parametrize(("body", "status", "error"), LARGE_BODIES.values(), ids=LARGE_BODIES)
def test_huge_deep_and_non_utf8_bodies_get_a_400(
    target: Target, body: bytes, status: int, error: str
) -> None:
    response = post_json(target, INFER, body)
    assert_handled(response, allowed=frozenset({status}))
    assert error in response.json()["error"], response.json()["error"][:300]
    assert len(response.content) < 10_000, "the error repeats what was sent"


def test_an_announced_gigabyte_is_refused_before_it_is_sent(server: Server) -> None:
    head = raw_request(
        "POST", INFER, [(b"Content-Type", b"application/json")], content_length=False
    )
    request = head.replace(b"Connection: close", b"Content-Length: 1073741824\r\nConnection: close")
    answer = raw_http(server.url, request)
    assert answer.status == 413 and json.loads(answer.body) == {"error": "request body too large"}


def test_a_body_that_never_ends_holds_only_its_own_connection(server: Server) -> None:
    """A client that announces more than it sends keeps one connection waiting; every other
    client is served meanwhile."""
    request = raw_request("POST", INFER, [(b"Content-Type", b"application/json")], GOOD)
    stalled = request.replace(b"Content-Length: ", b"Content-Length: 9", 1)
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
        sock.sendall(stalled)
        assert_still_serves(server.url)


# --- versions, over HTTP ----------------------------------------------------------------

VERSION_ROUTES = [("POST", "/infer"), ("GET", "/ready"), ("GET", "")]


def test_version_names_never_reach_the_store(
    server: Server, serving_store: ModelStore, record_property: RecordProperty
) -> None:
    """`../`, `%2F`, NUL, CR/LF, unicode... as the version of /v2/models/agi-credit/versions/
    {version}[/infer|/ready], sent unnormalised: a version the store serves answers, any
    other name is a 400 (not a version name), a 404 or a 405 (not a route), and never names
    a file or changes the store."""
    before = snapshot(serving_store.root)

    @given(version=version_strings, route=st.sampled_from(VERSION_ROUTES))
    def check(version: str, route: tuple[str, str]) -> None:
        method, suffix = route
        target = b"/v2/models/agi-credit/versions/" + path_segment(version) + suffix.encode()
        request = httpx.Request(
            method,
            f"{server.url}/",
            content=GOOD if method == "POST" else None,
            extensions={"target": target},
        )
        response = assert_version_answer(
            request, version, refused=frozenset({400, 404, 405}), store_root=serving_store.root
        )
        if response is not None and response.status_code == 400:
            assert response.json()["error"].startswith("invalid version name")

    run_fuzzed(check, "predictor: version names", HTTP_VERSION_EXAMPLES, record_property)
    assert snapshot(serving_store.root) == before
    assert_still_serves(server.url)


# --- headers, over HTTP -----------------------------------------------------------------


def test_request_ids_are_kept_when_sane_and_replaced_otherwise(
    server: Server, record_property: RecordProperty
) -> None:
    @given(sent=request_ids)
    def check(sent: bytes) -> None:
        response = httpx.post(
            f"{server.url}{INFER}", content=GOOD, headers={"x-request-id": sent}, timeout=TIMEOUT
        )
        assert_handled(response, allowed=frozenset({200}))
        (answered,) = response.headers.get_list("x-request-id")
        expected = expected_request_id(sent)
        if isinstance(expected, str):
            assert answered == expected
        else:
            assert expected.fullmatch(answered), answered

    run_fuzzed(check, "predictor: X-Request-Id values", HTTP_REQUEST_ID_EXAMPLES, record_property)


@pytest.mark.parametrize("headers", MALFORMED_HEADERS.values(), ids=MALFORMED_HEADERS)
def test_malformed_header_lines_are_refused_by_the_parser(
    target: Target, headers: list[tuple[bytes, bytes] | bytes]
) -> None:
    answer = assert_refused_by_the_parser(target, headers, GOOD)
    assert b"X-Auth-User" not in answer.data and b"Set-Cookie" not in answer.data


OVERSIZED_HEADERS: dict[str, list[tuple[bytes, bytes] | bytes]] = {
    "one header of 40 KiB": [(b"X-Big", b"a" * 40 * 1024)],
    "one header of 1 MiB": [(b"X-Big", b"a" * 1024 * 1024)],
    "5,000 small headers": [(f"X-H{i}".encode(), b"a") for i in range(5000)],
}


@pytest.mark.parametrize("headers", OVERSIZED_HEADERS.values(), ids=OVERSIZED_HEADERS)
def test_oversized_headers_get_a_431(
    target: Target, headers: list[tuple[bytes, bytes] | bytes]
) -> None:
    assert_headers_too_large(target, headers, GOOD)


def test_headers_within_the_limit_are_served(server: Server) -> None:
    answer = raw_http(server.url, raw_request("POST", INFER, [(b"X-Big", b"a" * 30_000)], GOOD))
    assert answer.status == 200, answer.data[:300]


def test_crlf_in_a_path_or_query_never_splits_the_answer(server: Server) -> None:
    for target in [INFER + "%0d%0aSet-Cookie:%20a=b", INFER + "?x=%0d%0aSet-Cookie:%20a=b"]:
        answer = raw_http(server.url, raw_request("POST", target, [], GOOD))
        assert answer.status is not None and answer.status < 500
        assert not answer.header_values(b"set-cookie")
        assert not re.search(rb"\r\nSet-Cookie", answer.data.partition(b"\r\n\r\n")[0])
