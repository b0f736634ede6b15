"""Hostile input through the auth sidecar (#10, item 7): a real sidecar in front of a real
predictor scoring with R. Whatever an authenticated client sends, on /predict, /model-info or
the v2/v1 pass-through, the answer is a 2xx or a 4xx with `{"error": ...}`, quickly; never a
5xx, a hang or a traceback; no version name reaches the store unless it is one; no identity
header of the client's reaches the predictor; and the stack still serves a good request
after each hostile batch. Last, schemathesis fuzzes every operation of the OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agi_credit.store import ModelStore
from tests.bodies import APPLICANT, v2_body
from tests.conftest import snapshot
from tests.hostile import (
    BODY_ROUTES,
    FRESH_REQUEST_ID,
    INFER,
    MALFORMED_HEADERS,
    TIMEOUT,
    RecordProperty,
    Target,
    Tried,
    assert_handled,
    assert_headers_too_large,
    assert_refused_by_the_parser,
    assert_still_serves,
    assert_version_answer,
    expected_request_id,
    fuzz_binary_requests,
    fuzz_json_bodies,
    fuzz_wrong_tensors,
    path_segment,
    raw_http,
    raw_request,
    request_ids,
    run_fuzzed,
    schemathesis_run,
    version_strings,
)
from tests.servers import USER, Sidecar

PASS_THROUGH_EXAMPLES = 100
PREDICT_EXAMPLES = 120
TENSOR_EXAMPLES = 60
BINARY_EXAMPLES = 80
VERSION_EXAMPLES = 150
FORGED_HEADER_EXAMPLES = 60
SCHEMATHESIS_EXAMPLES_PER_OPERATION = 40
SLOW_ANSWER_SECONDS = 10
"""schemathesis fails any answer slower than this (an argon2 login on a loaded CI machine
takes well under it)."""
"""Inputs each property tries (derandomized: the same ones on every run)."""


@pytest.fixture(scope="module")
def auth(sidecar: Sidecar) -> dict[str, str]:
    """An analyst's token (the predict role), good for the whole module (15 minutes)."""
    return sidecar.headers()


@pytest.fixture
def target(sidecar: Sidecar, auth: dict[str, str], record_property: RecordProperty) -> Target:
    """The sidecar with the analyst's token, for the properties both servers must hold."""
    return Target("sidecar", sidecar.url, record_property, auth)


ROUTES = {
    **BODY_ROUTES,
    "/predict": json.dumps(APPLICANT).encode(),
    "/predict/v1": json.dumps([APPLICANT, APPLICANT]).encode(),
}
"""Every route of the sidecar that reads a body, with a good body for it."""


def test_hostile_json_bodies_get_a_4xx_never_a_5xx(target: Target) -> None:
    """NaN/Infinity literals, duplicate keys, deep nesting, invalid UTF-8, truncated, huge
    or arbitrary JSON, on /predict and on every pass-through route that reads a body."""
    fuzz_json_bodies(target, ROUTES, examples=PASS_THROUGH_EXAMPLES + PREDICT_EXAMPLES)


def test_wrong_tensors_through_the_pass_through_get_a_4xx(target: Target) -> None:
    fuzz_wrong_tensors(target, examples=TENSOR_EXAMPLES)


def test_binary_requests_with_wrong_byte_lengths_get_a_400(target: Target) -> None:
    """The v2 binary extension through the pass-through (body and headers passed as sent)."""
    fuzz_binary_requests(target, examples=BINARY_EXAMPLES)


def version_requests(version: str) -> list[httpx.Request]:
    """`version` wherever a client can name one: the path of /predict and of the v2 version
    routes (sent unnormalised), and the `version` query of /predict and /model-info."""
    segment = path_segment(version)
    query = quote(version, safe="")
    v2 = b"/v2/models/agi-credit/versions/" + segment
    return [
        httpx.Request("POST", "/", json=APPLICANT, extensions={"target": b"/predict/" + segment}),
        httpx.Request("POST", f"/predict?version={query}", json=APPLICANT),
        httpx.Request("GET", f"/model-info?version={query}"),
        httpx.Request("POST", "/", json=v2_body(), extensions={"target": v2 + b"/infer"}),
        httpx.Request("GET", "/", extensions={"target": v2 + b"/ready"}),
        httpx.Request("GET", "/", extensions={"target": v2}),
    ]


def test_version_names_never_reach_the_store(
    sidecar: Sidecar,
    auth: dict[str, str],
    serving_store: ModelStore,
    record_property: RecordProperty,
) -> None:
    """`../`, `%2F`, NUL, CR/LF, unicode... as a version in a path or a query: a version the
    store serves answers; any other is a 4xx (not a version name, not found, not a route)
    that never names a file, and the store is unchanged."""
    before = snapshot(serving_store.root)

    @given(version=version_strings, which=st.integers(0, 5))
    def check(version: str, which: int) -> None:
        request = version_requests(version)[which]
        target = request.extensions.get("target", request.url.raw_path)
        request = httpx.Request(
            request.method,
            sidecar.url + "/",
            content=request.content,
            headers={**request.headers, **auth},
            extensions={"target": target},
        )
        assert_version_answer(
            request, version, refused=frozenset({400, 404, 405, 422}), store_root=serving_store.root
        )

    run_fuzzed(check, "sidecar: version names", VERSION_EXAMPLES, record_property)
    assert snapshot(serving_store.root) == before
    assert_still_serves(sidecar.url, auth)


IDENTITY_HEADERS = [
    "X-Auth-User",
    "X-Auth-Scopes",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "Forwarded",
    "X-Real-IP",
    "X-Request-Id",
]
"""What a client might forge so that the predictor believes it."""


def test_forged_identity_headers_never_reach_the_predictor(
    sidecar: Sidecar, auth: dict[str, str], record_property: RecordProperty
) -> None:
    """The user is the token's, whatever X-Auth-User says; the request id is the client's
    only when it is sane, else the sidecar's own, and the predictor logs that same id."""
    forged_ids: list[str] = []

    @given(
        names=st.lists(st.sampled_from(IDENTITY_HEADERS), min_size=1, unique=True),
        value=request_ids,
        case=st.sampled_from(["upper", "lower", "twice"]),
    )
    def check(names: list[str], value: bytes, case: str) -> None:
        headers = [(n.upper() if case == "upper" else n.lower(), value) for n in names]
        if case == "twice":
            headers += [(n, b"forged-" + value) for n in names]
        verified = httpx.get(
            f"{sidecar.url}/auth/verify",
            headers=[*auth.items(), *headers],
            timeout=TIMEOUT,
        )
        assert_handled(verified, allowed=frozenset({200}))
        assert verified.json() == {"user": USER}
        assert verified.headers.get_list("x-auth-user") == [USER]
        scored = httpx.post(
            f"{sidecar.url}{INFER}",
            json=v2_body(),
            headers=[*auth.items(), *headers],
            timeout=TIMEOUT,
        )
        assert_handled(scored, allowed=frozenset({200}))
        (answered,) = scored.headers.get_list("x-request-id")
        sent_ids = [v for n, v in headers if n.lower() == "x-request-id"]
        if sent_ids and case != "twice":
            expected = expected_request_id(sent_ids[0])
            if isinstance(expected, str):
                assert answered == expected
            else:
                assert expected.fullmatch(answered), answered
        if FRESH_REQUEST_ID.fullmatch(answered):
            forged_ids.append(answered)

    run_fuzzed(check, "sidecar: forged identity headers", FORGED_HEADER_EXAMPLES, record_property)
    logged = {record.get("request_id") for record in sidecar.predictor.records()}
    assert set(forged_ids) <= logged, "the predictor logged another id than the client got"


@pytest.mark.parametrize("headers", MALFORMED_HEADERS.values(), ids=MALFORMED_HEADERS)
def test_malformed_header_lines_are_refused_by_the_parser(
    target: Target, auth: dict[str, str], headers: list[tuple[bytes, bytes] | bytes]
) -> None:
    token = [(b"Authorization", auth["Authorization"].encode())]
    assert_refused_by_the_parser(target, [*token, *headers], json.dumps(v2_body()).encode())


OVERSIZED_HEADERS: dict[str, list[tuple[bytes, bytes] | bytes]] = {
    "one header of 40 KiB": [(b"X-Big", b"a" * 40 * 1024)],
    "one header of 1 MiB": [(b"X-Big", b"a" * 1024 * 1024)],
    "a token of 1 MiB": [(b"Authorization", b"Bearer " + b"a" * 1024 * 1024)],
    "5,000 small headers": [(f"X-H{i}".encode(), b"a") for i in range(5000)],
}


@pytest.mark.parametrize("headers", OVERSIZED_HEADERS.values(), ids=OVERSIZED_HEADERS)
def test_oversized_headers_get_a_431_before_the_token_is_checked(
    target: Target, headers: list[tuple[bytes, bytes] | bytes]
) -> None:
    assert_headers_too_large(target, headers, b"{}")


@pytest.mark.parametrize("path", [INFER, "/predict"])
def test_headers_just_within_the_sidecars_limit_reach_the_predictor(
    sidecar: Sidecar, auth: dict[str, str], path: str
) -> None:
    """The sidecar passes a client's headers on with its own: what it lets in, the predictor
    (whose limit is that much higher) takes."""
    filler = 32 * 1024 - 200 - len(auth["Authorization"])
    headers = [
        (b"Authorization", auth["Authorization"].encode()),
        (b"Content-Type", b"application/json"),
        (b"X-Big", b"a" * filler),
    ]
    body = json.dumps(v2_body() if path == INFER else APPLICANT).encode()
    answer = raw_http(sidecar.url, raw_request("POST", path, headers, body))
    assert answer.status == 200, answer.data[:300]


def test_pass_through_answers_carry_one_date_and_no_server_header(
    sidecar: Sidecar, auth: dict[str, str]
) -> None:
    """The sidecar's own server dates its answers; the predictor's Date and Server headers
    stayed in passed-through answers (two Date headers, and the predictor's software)."""
    for response in [
        httpx.post(f"{sidecar.url}{INFER}", json=v2_body(), headers=auth, timeout=TIMEOUT),
        httpx.get(f"{sidecar.url}/v2/models/agi-credit/ready", headers=auth, timeout=TIMEOUT),
        httpx.post(f"{sidecar.url}{INFER}", json={"inputs": []}, headers=auth, timeout=TIMEOUT),
    ]:
        assert len(response.headers.get_list("date")) == 1, response.headers
        assert "server" not in response.headers


def test_crlf_in_a_path_or_query_never_splits_the_answer(
    sidecar: Sidecar, auth: dict[str, str]
) -> None:
    token = [(b"Authorization", auth["Authorization"].encode())]
    body = json.dumps(v2_body()).encode()
    for target in [
        INFER + "%0d%0aSet-Cookie:%20a=b",
        INFER + "?x=%0d%0aSet-Cookie:%20a=b",
        "/predict?version=v1%0d%0aSet-Cookie:%20a=b",
    ]:
        answer = raw_http(sidecar.url, raw_request("POST", target, token, body))
        assert answer.status is not None and answer.status < 500, answer.data[:300]
        assert not answer.header_values(b"set-cookie")


def test_schemathesis_finds_no_server_error_nor_slow_answer(
    sidecar: Sidecar, auth: dict[str, str], tmp_path: Path, record_property: RecordProperty
) -> None:
    """schemathesis generates valid and invalid requests (NUL bytes included) for every
    operation of /openapi.json, with the model's own name in paths so that they reach the
    predictor: no answer may be a 5xx, take over `SLOW_ANSWER_SECONDS`, or let a request
    without a token in."""
    (tmp_path / "schemathesis.toml").write_text('[parameters]\n"path.name" = "agi-credit"\n')
    generated, passed = schemathesis_run(
        f"{sidecar.url}/openapi.json",
        "--checks",
        "not_a_server_error,ignored_auth",
        "--max-response-time",
        str(SLOW_ANSWER_SECONDS),
        "--max-examples",
        str(SCHEMATHESIS_EXAMPLES_PER_OPERATION),
        "--generation-deterministic",
        "--generation-allow-x00",
        "true",
        "--header",
        f"Authorization: {auth['Authorization']}",
        "--request-timeout",
        "15",
        "--no-color",
        cwd=tmp_path,
        timeout=300,
    )
    assert generated == passed > 500
    tried = Tried("sidecar: schemathesis (OpenAPI)")
    tried.one(generated)
    tried.report(record_property)
    assert_still_serves(sidecar.url, auth)
