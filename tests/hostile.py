"""Hostile input, shared by the predictor's and the sidecar's tests: hypothesis strategies for
bodies, binary tensors, version names and header values; a raw HTTP/1.1 client for what
httpx refuses to send (CR/LF in headers, smuggling, paths it would normalise); and the
checks every answer must pass: never a 5xx, never a hang, never a traceback.

Every property runs a fixed number of examples (`fuzzed`), derandomized and without an
example database, so a run is the same on every machine; each test reports how many
inputs it tried (`Tried`), printed and recorded as the `inputs_tried` property of its
JUnit entry.

The properties both servers must hold over HTTP (hostile JSON bodies, wrong tensors, binary
requests) are here once, each run against a `Target`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.bodies import APPLICANT, FEATURES, v1_body, v2_binary, v2_body

RecordProperty = Callable[[str, object], None]

TIMEOUT = httpx.Timeout(15.0)
"""Every request's bound: an answer slower than this is a hang."""

INFER = "/v2/models/agi-credit/infer"
V1_PREDICT = "/v1/models/agi-credit:predict"

BODY_ROUTES = {
    INFER: json.dumps(v2_body()).encode(),
    "/v2/models/agi-credit/versions/v1/infer": json.dumps(v2_body()).encode(),
    V1_PREDICT: json.dumps(v1_body()).encode(),
    "/v1/models/agi-credit:explain": json.dumps(v1_body()).encode(),
}
"""Every route of the predictor that reads a body, with a good body for it (the sidecar
passes them all through)."""

SERVED = {"v1", "v2", "v3"}
"""The serving store's versions (tests/conftest.py)."""

TRACEBACK = re.compile(r"Traceback|File \"|\w+Error : |\w+Exception : |line \d+, in ")
"""What a leaked Python traceback or KServe's `Type : message` of an exception looks like."""

SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
FRESH_REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def fuzzed(examples: int) -> settings:
    """Hypothesis settings for one property over real servers: exactly `examples` inputs at
    most, the same ones on every run (derandomized, no database), no deadline (the servers
    share two cores), shrinking kept to explain a failure."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=False,
    )


@dataclass
class Tried:
    """Counts the inputs a test sends, for the reliability report."""

    test: str
    count: int = 0

    def one(self, n: int = 1) -> None:
        self.count += n

    def report(self, record_property: RecordProperty) -> None:
        print(f"{self.test}: {self.count} inputs tried")
        record_property("inputs_tried", self.count)


def run_fuzzed(check: Any, test: str, examples: int, record_property: RecordProperty) -> None:
    """Run `check`, a property under `@given`, on `examples` inputs (`fuzzed`), counting each
    input it is called with, and report the count as `test`'s (`Tried`)."""
    tried = Tried(test)
    inner = check.hypothesis.inner_test

    @functools.wraps(inner)
    def counted(*args: Any, **kwargs: Any) -> None:
        tried.one()
        inner(*args, **kwargs)

    check.hypothesis.inner_test = counted  # Hypothesis's documented hook for wrapping a test
    fuzzed(examples)(check)()
    tried.report(record_property)


# --- answers ---------------------------------------------------------------------------


def assert_handled(response: httpx.Response, *, allowed: frozenset[int] | None = None) -> None:
    """Not a server error: a status below 500 (one of `allowed`, if given); an error body
    is `{"error": "..."}` and carries no traceback."""
    target = response.request.extensions.get("target", response.request.url.raw_path)
    context = f"{response.request.method} {target[:200]!r}"
    assert response.status_code < 500, f"{context}: {response.status_code} {response.text[:500]}"
    if allowed is not None:
        assert response.status_code in allowed, f"{context}: {response.status_code}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str), response.text[:500]
        assert not TRACEBACK.search(body["error"]), body["error"][:500]


def assert_still_serves(base: str, headers: Mapping[str, str] | None = None) -> None:
    """A good v2 request, JSON and binary, is still scored after a hostile batch."""
    good = httpx.post(f"{base}{INFER}", json=v2_body(), headers=headers, timeout=TIMEOUT)
    assert good.status_code == 200, good.text
    assert [o["name"] for o in good.json()["outputs"]] == ["prob_default", "prediction"]
    body, binary_headers = v2_binary(APPLICANT)
    binary = httpx.post(
        f"{base}{INFER}",
        content=body,
        headers={**binary_headers, **(headers or {})},
        timeout=TIMEOUT,
    )
    assert binary.status_code == 200, binary.text


def assert_version_answer(
    request: httpx.Request, version: str, *, refused: frozenset[int], store_root: Path
) -> httpx.Response | None:
    """Send `request`, which names `version`: a version the store serves (`SERVED`) answers
    200, any other name one of `refused`, and no answer names a file. None for Starlette's
    redirect to the path with(out) a trailing slash, which must stay on the same server."""
    with httpx.Client(timeout=TIMEOUT) as client:
        response = client.send(request)
    if response.status_code == 307:
        assert response.headers["location"].startswith(str(request.url))
        return None
    assert_handled(response, allowed=frozenset({200}) if version in SERVED else refused)
    assert str(store_root) not in response.text and "/etc/" not in response.text
    return response


# --- properties over HTTP, either server -----------------------------------------------


@dataclass(frozen=True)
class Target:
    """A server under hostile input: its name in reports (`Tried`), its URL, the headers
    every request to it carries (a token, or none) and the test's `record_property`."""

    name: str
    url: str
    record_property: RecordProperty
    headers: Mapping[str, str] = field(default_factory=dict)


def post_json(target: Target, path: str, body: bytes) -> httpx.Response:
    """`body`, as it is, to `path` as `application/json`."""
    return httpx.post(
        f"{target.url}{path}",
        content=body,
        headers={**target.headers, "content-type": "application/json"},
        timeout=TIMEOUT,
    )


def fuzz_json_bodies(target: Target, routes: Mapping[str, bytes], *, examples: int) -> None:
    """Hostile JSON bodies (`hostile_json_bodies`, from each route's good body) to `routes`:
    each answered 200, 400 or 422, then a good request is still scored."""
    tried = Tried(f"{target.name}: hostile JSON bodies")

    @fuzzed(examples)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(list(routes)))
        body = data.draw(hostile_json_bodies(routes[path]))
        tried.one()  # once drawn: a draw Hypothesis abandons sends nothing
        assert_handled(post_json(target, path, body), allowed=frozenset({200, 400, 422}))

    check()
    tried.report(target.record_property)
    assert_still_serves(target.url, target.headers)


def fuzz_wrong_tensors(target: Target, *, examples: int) -> None:
    """v2 JSON bodies of `wrong_tensors` to INFER: each answered 200, 400 or 422, then a good
    request is still scored."""

    @given(body=wrong_tensors())
    def check(body: dict[str, Any]) -> None:
        # json.dumps, not httpx's json=: a drawn NaN or Infinity is sent as its literal.
        response = post_json(target, INFER, json.dumps(body).encode())
        assert_handled(response, allowed=frozenset({200, 400, 422}))

    run_fuzzed(check, f"{target.name}: wrong v2 tensors", examples, target.record_property)
    assert_still_serves(target.url, target.headers)


def fuzz_binary_requests(target: Target, *, examples: int) -> None:
    """`binary_requests` to INFER: a consistent one is scored, any other is a 400; then a
    good request is still scored."""

    @given(request=binary_requests())
    def check(request: BinaryRequest) -> None:
        response = httpx.post(
            f"{target.url}{INFER}",
            content=request.body,
            headers={**request.http_headers(), **target.headers},
            timeout=TIMEOUT,
        )
        assert_handled(response, allowed=frozenset({200} if request.consistent else {200, 400}))

    run_fuzzed(check, f"{target.name}: binary requests", examples, target.record_property)
    assert_still_serves(target.url, target.headers)


# --- raw HTTP/1.1 ----------------------------------------------------------------------


@dataclass(frozen=True)
class RawAnswer:
    """What a server sent back on a raw connection: its status (None when it closed the
    connection without answering) and the bytes, head and body."""

    status: int | None
    data: bytes

    @property
    def body(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[2]

    def header_values(self, name: bytes) -> list[bytes]:
        head = self.data.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]
        return [v.strip() for k, _, v in (h.partition(b":") for h in head) if k.lower() == name]


def raw_http(base: str, request: bytes, *, timeout: float = 15.0) -> RawAnswer:
    """Send `request` as bytes on a new connection to `base` (loopback) and read the whole
    answer (the request should say `Connection: close`). A server that neither answers nor
    closes within `timeout` fails the test: a hang."""
    url = urlsplit(base)
    assert url.hostname in ("127.0.0.1", "::1"), base
    with socket.create_connection((url.hostname, url.port or 80), timeout=timeout) as sock:
        # A server may refuse before reading it all; its answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError as exc:
                raise AssertionError(f"no answer in {timeout} s: {request[:200]!r}") from exc
            if not chunk:
                break
            data += chunk
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
    return RawAnswer(int(match.group(1)) if match else None, data)


def raw_request(
    method: str,
    target: bytes | str,
    headers: list[tuple[bytes, bytes] | bytes] | None = None,
    body: bytes = b"",
    *,
    content_length: bool = True,
) -> bytes:
    """An HTTP/1.1 request as bytes, exactly as given: nothing is validated or encoded. A
    header is a (name, value) pair or a raw line."""
    target = target.encode() if isinstance(target, str) else target
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [h if isinstance(h, bytes) else h[0] + b": " + h[1] for h in headers or []]
    if content_length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


MALFORMED_HEADERS: dict[str, list[tuple[bytes, bytes] | bytes]] = {
    "CR in a value": [(b"X-Request-Id", b"abc\rdef")],
    "LF in a value (a forged second header)": [(b"X-Request-Id", b"abc\nX-Auth-User: admin")],
    "NUL in a value": [(b"X-Request-Id", b"abc\x00def")],
    "obsolete line folding": [(b"X-Request-Id", b"abc\r\n def")],
    "space before the colon": [(b"X-Request-Id ", b"abc")],
    "space in a name": [(b"X Auth User", b"admin")],
    "no colon": [b"X-Request-Id abc"],
    "chunked and a Content-Length (smuggling)": [(b"Transfer-Encoding", b"chunked")],
    "two different Content-Lengths": [(b"Content-Length", b"3")],
    "a negative Content-Length": [(b"Content-Length", b"-1")],
}
"""Header lines an HTTP/1.1 parser must refuse (a 400, or a closed connection); httpx
cannot send them. Each comes with a valid JSON body and its Content-Length."""


def assert_refused_by_the_parser(
    target: Target, headers: list[tuple[bytes, bytes] | bytes], body: bytes
) -> RawAnswer:
    """A POST to INFER with `headers` as given is refused (a 400, or a closed connection),
    and the server still serves."""
    answer = raw_http(target.url, raw_request("POST", INFER, headers, body))
    assert answer.status in (400, None), answer.data[:300]
    assert_still_serves(target.url, target.headers)
    return answer


def assert_headers_too_large(
    target: Target, headers: list[tuple[bytes, bytes] | bytes], body: bytes
) -> None:
    """A POST to INFER with `headers` gets a 431 as `{"error"}`, and the server still serves."""
    answer = raw_http(target.url, raw_request("POST", INFER, headers, body))
    assert answer.status == 431, answer.data[:300]
    assert json.loads(answer.body) == {"error": "request headers too large"}
    assert_still_serves(target.url, target.headers)


# --- strategies ------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)

NUMBER = re.compile(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?")
NON_JSON_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"9" * 400, b"0x10"]
"""Number literals JSON does not have, or that overflow a double."""
INVALID_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x00",
    b"\xc0\xaf",
]


@st.composite
def hostile_json_bodies(draw: st.DrawFn, valid: bytes) -> bytes:
    """A body meant to break a JSON reader, derived from the `valid` body or not: a number
    replaced by a NaN/Infinity literal or an overflowing one, a duplicated key, deep nesting,
    invalid UTF-8, a truncation, a huge string, or any JSON at all."""
    kind = draw(
        st.sampled_from(
            ["literal", "duplicate", "deep", "utf8", "truncated", "huge", "any", "bytes"]
        )
    )
    if kind == "literal":
        numbers = list(NUMBER.finditer(valid))
        match = numbers[draw(st.integers(0, len(numbers) - 1))]
        literal = draw(st.sampled_from(NON_JSON_NUMBERS))
        return valid[: match.start()] + literal + valid[match.end() :]
    if kind == "duplicate":
        parsed = json.loads(valid)
        objects = _objects(parsed)
        where = objects[draw(st.integers(0, len(objects) - 1))]
        key = draw(st.sampled_from(list(where)))
        return _dumps_with_duplicate(
            parsed, where, key, draw(json_values), first=draw(st.booleans())
        )
    if kind == "deep":
        depth = draw(st.sampled_from([100, 1_000, 100_000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        closed = draw(st.booleans())
        return opener * depth + b"1" + (closer * depth if closed else b"")
    if kind == "utf8":
        at = draw(st.integers(0, len(valid)))
        return valid[:at] + draw(st.sampled_from(INVALID_UTF8)) + valid[at:]
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "huge":
        size = draw(st.sampled_from([100_000, 2_000_000]))
        return valid[:-1] + b', "padding": "' + b"x" * size + b'"}'
    if kind == "any":
        return json.dumps(draw(json_values)).encode()
    return draw(st.binary(max_size=64))


def _objects(value: Any) -> list[dict[str, Any]]:
    """Every non-empty object in `value`, outermost first."""
    if isinstance(value, dict):
        inner = [o for v in value.values() for o in _objects(v)]
        return [value, *inner] if value else inner
    if isinstance(value, list):
        return [o for v in value for o in _objects(v)]
    return []


def _dumps_with_duplicate(
    value: Any, where: dict[str, Any], key: str, duplicate: Any, *, first: bool
) -> bytes:
    """`value` as JSON, the object `where` with `key` twice: `duplicate` first or last."""
    if isinstance(value, list):
        items = [_dumps_with_duplicate(v, where, key, duplicate, first=first) for v in value]
        return b"[" + b", ".join(items) + b"]"
    if not isinstance(value, dict):
        return json.dumps(value).encode()
    members = [
        json.dumps(k).encode()
        + b": "
        + _dumps_with_duplicate(v, where, key, duplicate, first=first)
        for k, v in value.items()
    ]
    if value is where:
        extra = json.dumps(key).encode() + b": " + json.dumps(duplicate).encode()
        members = [extra, *members] if first else [*members, extra]
    return b"{" + b", ".join(members) + b"}"


DATATYPES = ["FP64", "FP32", "INT64", "INT32", "fp64", "FP16", "BOOL", "UINT8", "BYTES", "", "NOPE"]
SHAPES = st.lists(st.integers(-2, 3) | st.sampled_from([2**31, 2**63, -(2**63)]), max_size=3)


@st.composite
def wrong_tensors(draw: st.DrawFn) -> dict[str, Any]:
    """A v2 JSON body whose tensors may have any shape, datatype, name or data."""
    inputs = []
    names = draw(st.lists(st.sampled_from([*FEATURES, "x", ""]), min_size=0, max_size=5))
    for name in names:
        rows = draw(st.integers(0, 3))
        data = draw(
            st.lists(
                st.floats(allow_nan=False) | st.integers(-(2**70), 2**70) | json_scalars,
                min_size=rows,
                max_size=rows,
            )
            | st.lists(st.lists(st.floats(allow_nan=False), max_size=3), max_size=3)
        )
        shape = draw(st.just([len(data)]) | SHAPES)
        inputs.append(
            {
                "name": name,
                "shape": shape,
                "datatype": draw(st.sampled_from(DATATYPES)),
                "data": data,
            }
        )
    return {"inputs": inputs}


BINARY_FORMATS = {"FP64": "<d", "FP32": "<f", "INT64": "<q", "INT32": "<i"}


@dataclass(frozen=True)
class BinaryRequest:
    """A v2 binary request: its body, its headers and whether every length in it is right."""

    body: bytes
    headers: dict[str, str]
    consistent: bool

    def http_headers(self) -> dict[str, bytes]:
        """As sent: UTF-8 bytes (httpx would refuse a non-ASCII str)."""
        return {name: value.encode() for name, value in self.headers.items()}


@st.composite
def binary_requests(draw: st.DrawFn) -> BinaryRequest:
    """The applicant's four features as binary tensors (v2 binary extension), each of any
    numeric datatype; then, most of the time, one thing wrong: the header length, a
    `binary_data_size`, a shape, a datatype, or bytes cut off or added at the end."""
    rows = draw(st.integers(1, 3))
    header: dict[str, Any] = {"inputs": []}
    chunks = []
    for feature in FEATURES:
        datatype = draw(st.sampled_from(list(BINARY_FORMATS)))
        values = [APPLICANT[feature]] * rows
        if datatype.startswith("INT"):
            values = [int(v) for v in values]
        chunk = b"".join(struct.pack(BINARY_FORMATS[datatype], v) for v in values)
        header["inputs"].append(
            {
                "name": feature,
                "shape": [rows],
                "datatype": datatype,
                "parameters": {"binary_data_size": len(chunk)},
            }
        )
        chunks.append(chunk)
    tampering = draw(
        st.sampled_from(
            ["none", "size", "header length", "shape", "datatype", "cut", "extra", "data too"]
        )
    )
    victim = header["inputs"][draw(st.integers(0, len(FEATURES) - 1))]
    if tampering == "size":
        victim["parameters"]["binary_data_size"] = draw(
            st.sampled_from([-8, -1, 0, 1, 7, 9, 2**31, 2**64, 10**30, 1.5, 8.0, True])
            | st.text(max_size=4)
            | st.none()
            | st.just([8])
            | st.just({"size": 8})
        )
    elif tampering == "shape":
        victim["shape"] = draw(SHAPES.filter(lambda s: s != victim["shape"]))
    elif tampering == "datatype":
        victim["datatype"] = draw(st.sampled_from(["BYTES", "FP16", "BOOL", "UINT64", "", "x"]))
    elif tampering == "data too":
        victim["data"] = [1.0] * rows
    head = json.dumps(header).encode()
    body = head + b"".join(chunks)
    length = str(len(head))
    if tampering == "header length":
        length = draw(
            st.sampled_from(["", "-1", "0", "abc", "1 2", "1e3", "0x10", "9" * 30, "١٢"])
            | st.integers(0, len(body) + 10).map(str)
        )
    elif tampering == "cut":
        body = body[: len(body) - draw(st.integers(1, 8 * rows))]
    elif tampering == "extra":
        body += draw(st.binary(min_size=1, max_size=16))
    consistent = tampering == "none" or (tampering == "header length" and length == str(len(head)))
    return BinaryRequest(
        body,
        {"inference-header-content-length": length, "content-type": "application/octet-stream"},
        consistent,
    )


TRAVERSALS = [
    "..",
    "../..",
    "../../etc/passwd",
    "..%2F..",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%2e%2e%2f%2e%2e",
    "..%5c..",
    "..\\..",
    "v1/../v2",
    "v1%2F..%2Fv2",
    "v1%00",
    "%00",
    "v1%0d%0aX-Injected:%201",
    "%ff%fe",
    "v0",
    "v01",
    "V1",
    "v-1",
    "v1.5",
    "v" + "9" * 40,
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "~root",
    "$(id)",
    "v1;rm -rf",
    "....//....//",
]
"""Version names that reach for a path outside the store, or are not version names."""

version_strings = (
    st.sampled_from(TRAVERSALS)
    | st.lists(
        st.sampled_from(["..", ".", "v1", "v2", "%2e%2e", "%2F", "%00", "etc", "passwd", ""]),
        min_size=1,
        max_size=6,
    ).map("/".join)
    | st.text(max_size=24)
)
"""Percent-encoded or raw: they are put in paths as they are (see `path_segment`)."""


def path_segment(version: str) -> bytes:
    """`version` in a request target as sent: printable ASCII as is (so `../` and `%2F`
    reach the server unnormalised), anything else percent-encoded as UTF-8."""
    return "".join(
        c if 0x21 <= ord(c) < 0x7F and c not in "?#" else "".join(f"%{b:02X}" for b in c.encode())
        for c in version
    ).encode()


request_ids = st.lists(
    st.sampled_from([bytes([b]) for b in [*range(0x21, 0x7F), *range(0x80, 0x100)]]),
    min_size=1,
    max_size=200,
).map(b"".join) | st.sampled_from(
    [b"ok-id-1", b"../../etc/passwd", b"a" * 129, b"a" * 128, b"<script>", b"id%0d%0a", b"\xff"]
)
"""X-Request-Id values an HTTP client can send: visible bytes of any kind and length."""


def expected_request_id(sent: bytes) -> re.Pattern[str] | str:
    """What a server answers to `X-Request-Id: sent`: the same id when it is sane, else a new
    one of its own (a sane id is all that may reach a log)."""
    if SANE_REQUEST_ID.fullmatch(sent.decode("latin-1")):
        return sent.decode()
    return FRESH_REQUEST_ID


# --- schemathesis ----------------------------------------------------------------------


def schemathesis_run(openapi_url: str, *options: str, cwd: Path, timeout: float) -> tuple[int, int]:
    """`schemathesis run OPENAPI_URL OPTIONS` in `cwd`, without hooks: it must exit 0. The
    counts of test cases it generated and that passed."""
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", openapi_url, *options],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counts is not None, result.stdout[-2000:]
    generated, passed = map(int, counts.groups())
    return generated, passed
