"""gRPC messages at the size limit (MAX_REQUEST_BYTES, 64 MiB) through a real sidecar process
to the real predictor, sent by grpcio with kserve's protobuf messages.

A ModelInfer without a valid token is refused before its message is read: the sidecar's peak
memory grows by far less than the message (it was +203 MB when grpc read it whole first).
Authorized calls hold one of the /predict slots (MAX_CONCURRENT_PREDICTS, shared with REST)
from reading their message to the predictor's answer: with one slot, two messages at once
cost one, and a call waits, its message unread, while a REST /predict holds the slot.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import numpy as np
import pytest
from bench.large_request import applicants, realistic_body
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

from agi_credit.settings import DEFAULT_MAX_REQUEST_BYTES
from tests.auth.test_roles import signed
from tests.bodies import FEATURES, all_but_the_last_byte
from tests.servers import ADMIN, Sidecar, memory_mb, reset_peak

pytestmark = pytest.mark.slow

MODEL = "agi-credit"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
ROWS = 250_000
"""8 MB of FP64 tensors: about the largest message the predictor's gRPC port receives (8 MiB,
KServe's default `grpc_max_receive_message_length`)."""
PREDICTOR_REFUSES = "Received message larger than max"
"""The predictor's answer to a larger message, passed on by the sidecar."""
REFUSED_MB = 16
"""What a refused message at the limit may add to the sidecar's peak: what HTTP/2 lets its
client send before the refusal, not the message's 67 MB (it was +203 MB)."""
WAITING_MB = 4
"""What a message at the limit waiting for a slot may add to the sidecar's RSS: measured
+0.1 MB with HTTP/2's default 64 KiB window; +12 MB with grpc's BDP probing on."""
NOISE_MB = 50
"""As tests/auth/test_large_requests.py: how much more than one alone two messages at once
through one slot may take (the allocator's)."""
CHART_LIMIT_MB = ((128 << 20) + 2 * 4 * DEFAULT_MAX_REQUEST_BYTES + 2 * (64 << 20)) / 1e6
"""The chart's memory limit for the sidecar with the defaults (768 MiB): 128 MiB + 2 slots x
4 x MAX_REQUEST_BYTES + 2 argon2 workers x 64 MiB (docs/reliability.md, "Memory bounds")."""
ARGON2_POOL_MB = 2 * (64 << 20) / 1e6
"""Two logins hashing at once (PASSWORD_HASH_WORKERS=2): what the peak does not include."""
ADMIN_SCOPE_ONLY = "a valid token without the predict scope"
OPTIONS = [
    ("grpc.max_send_message_length", DEFAULT_MAX_REQUEST_BYTES),
    ("grpc.max_receive_message_length", DEFAULT_MAX_REQUEST_BYTES),
]


def infer_request(rows: int, *, size: int | None = None, request_id: str = "large") -> bytes:
    """A ModelInferRequest of `rows` applicants, FP64 tensors in `raw_input_contents` (as
    tritonclient sends them); with `size`, its id padded so that it is exactly `size` bytes."""
    columns = applicants(rows, np.random.default_rng(20261208))
    message = pb.ModelInferRequest(
        model_name=MODEL,
        id=request_id,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name=name, datatype="FP64", shape=[rows])
            for name in FEATURES
        ],
        raw_input_contents=[column.astype("<f8").tobytes() for column in columns],
    )
    if size is not None:
        for _ in range(3):  # the id's length prefix may grow with it
            missing = size - message.ByteSize()
            message.id = message.id + "x" * missing if missing >= 0 else message.id[:missing]
        assert message.ByteSize() == size
    return bytes(message.SerializeToString())


def model_infer(
    target: str | grpc.Channel,
    request: bytes,
    authorization: str | None,
    timeout: float = 120,
) -> tuple[grpc.StatusCode, bytes | str]:
    """One ModelInfer, on `target`'s channel or on one of its own: (OK, the answer's bytes)
    or (code, details)."""
    metadata = (("authorization", authorization),) if authorization is not None else None
    if isinstance(target, str):
        with grpc.insecure_channel(target, options=OPTIONS) as channel:
            return model_infer(channel, request, authorization, timeout)
    try:
        call = target.unary_unary(MODEL_INFER)
        return grpc.StatusCode.OK, bytes(call(request, metadata=metadata, timeout=timeout))
    except grpc.RpcError as exc:
        return exc.code(), str(exc.details())


@pytest.fixture(scope="module")
def at_the_limit() -> bytes:
    """A ModelInfer of exactly MAX_REQUEST_BYTES (2.1 million rows): the sidecar reads and
    forwards it; the predictor takes no more than 8 MiB and says so (RESOURCE_EXHAUSTED)."""
    rows = (DEFAULT_MAX_REQUEST_BYTES - 1024) // (8 * len(FEATURES))
    return infer_request(rows, size=DEFAULT_MAX_REQUEST_BYTES)


@pytest.mark.parametrize(
    ("authorization", "code", "details"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED, "token missing"),
        ("Bearer not-a-token", grpc.StatusCode.UNAUTHENTICATED, "invalid token"),
        (ADMIN_SCOPE_ONLY, grpc.StatusCode.PERMISSION_DENIED, "this needs the predict role"),
    ],
    ids=["none", "garbage", "no-predict-scope"],
)
def test_a_message_at_the_limit_without_a_valid_token_is_refused_unread(
    default_sidecar: Sidecar,
    at_the_limit: bytes,
    authorization: str | None,
    code: grpc.StatusCode,
    details: str,
) -> None:
    if authorization == ADMIN_SCOPE_ONLY:
        authorization = signed(ADMIN, "admin")["Authorization"]
    pid = default_sidecar.process.pid
    warm_up = model_infer(default_sidecar.grpc_target, b"", authorization)
    assert warm_up == (code, details)
    reset_peak(pid)
    idle = memory_mb(pid, "VmRSS")
    started = time.monotonic()
    refused = model_infer(default_sidecar.grpc_target, at_the_limit, authorization)
    seconds = time.monotonic() - started
    grown = memory_mb(pid, "VmHWM") - idle
    print(f"refused ({code.name}) in {seconds:.2f} s: the sidecar's peak +{grown:.1f} MB")
    assert refused == (code, details)
    assert grown < REFUSED_MB, f"+{grown:.1f} MB for a refused message of 67 MB"
    time.sleep(0.2)  # the access log line is written as the call ends
    [line] = [
        r
        for r in default_sidecar.records()[-20:]
        if r.get("event") == "access" and r.get("path") == MODEL_INFER
    ][-1:]
    assert line["status"] == code.name and line["user"] is None
    assert "not-a-token" not in default_sidecar.logs()


def test_an_authorized_call_gets_the_predictors_answer_bit_for_bit(
    default_sidecar: Sidecar,
) -> None:
    """A ModelInfer as large as the predictor takes: the sidecar's answer is the predictor's
    own, byte for byte."""
    request = infer_request(ROWS, request_id="bit-for-bit")
    token = f"Bearer {default_sidecar.token()}"
    through = model_infer(default_sidecar.grpc_target, request, token)
    assert through[0] == grpc.StatusCode.OK, through
    direct = model_infer(default_sidecar.predictor.grpc_url, request, None)
    assert direct == through
    assert isinstance(through[1], bytes)
    answer = pb.ModelInferResponse.FromString(through[1])
    assert answer.id == "bit-for-bit" and answer.outputs[0].name == "prob_default"
    prob = np.frombuffer(answer.raw_output_contents[0], dtype="<f8")
    assert len(prob) == ROWS and np.all((prob > 0) & (prob < 1))


def _peak_over_idle(sidecar: Sidecar, request: bytes, at_once: int) -> tuple[float, float]:
    """`at_once` authorized ModelInfers of `request` at the same time, each on a channel of
    its own: the sidecar's RSS before, and its peak over that. Each is read and forwarded,
    and refused by the predictor (over its 8 MiB), with its message."""
    token = f"Bearer {sidecar.token()}"
    warm_up = model_infer(sidecar.grpc_target, infer_request(10), token)
    assert warm_up[0] == grpc.StatusCode.OK, warm_up
    time.sleep(0.5)
    pid = sidecar.process.pid
    reset_peak(pid)
    idle = memory_mb(pid, "VmRSS")
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        calls = [
            pool.submit(model_infer, sidecar.grpc_target, request, token) for _ in range(at_once)
        ]
        results = [call.result(timeout=300) for call in calls]
    peak = memory_mb(pid, "VmHWM")
    for code, details in results:
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
        assert PREDICTOR_REFUSES in str(details)
    return idle, peak - idle


def test_authorized_messages_at_the_limit_stay_under_the_charts_limit(
    default_sidecar: Sidecar, at_the_limit: bytes
) -> None:
    """One, two at once (the default two slots) and four at once (two wait): the sidecar's
    peak, plus a busy argon2 pool (2 x 64 MiB), stays under the chart's limit. A slot takes
    3.4 to 3.9 times a gRPC message (grpc holds three copies while it reads one): the bound
    gives a slot 4 (docs/reliability.md, "Memory bounds")."""
    for at_once in (1, 2, 4):
        idle, grown = _peak_over_idle(default_sidecar, at_the_limit, at_once)
        print(
            f"{at_once} at once through 2 slots: {idle:.0f} MB before, peak {idle + grown:.0f} "
            f"MB (+{grown:.0f}; the chart's limit {CHART_LIMIT_MB:.0f} MB)"
        )
        assert idle + grown + ARGON2_POOL_MB <= CHART_LIMIT_MB


def test_two_messages_at_the_limit_at_once_cost_one_with_one_slot(
    one_slot_sidecar: Sidecar, at_the_limit: bytes
) -> None:
    _, alone = _peak_over_idle(one_slot_sidecar, at_the_limit, 1)  # the baseline
    _, two = _peak_over_idle(one_slot_sidecar, at_the_limit, 2)
    seen = f"+{alone:.0f} MB over idle for one message, +{two:.0f} MB for two at once"
    print(f"1 slot: {seen}")
    assert two <= alone + NOISE_MB, seen


def test_a_call_waits_unread_while_a_rest_predict_holds_the_one_slot(
    one_slot_sidecar: Sidecar, at_the_limit: bytes
) -> None:
    """REST and gRPC share the slots. While a /predict holds the only one (its client sends
    all but the last byte), a ModelInfer at the limit waits with its message unread, on a
    connection that has just carried one (HTTP/2 windows grow with use); one whose deadline
    passes while it waits gives its turn back; one without a token is refused at once.
    Once the /predict is answered, the waiting call is served."""
    sidecar = one_slot_sidecar
    token = sidecar.token()
    small = infer_request(10, request_id="small")
    sent, go = threading.Event(), threading.Event()
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    with (
        grpc.insecure_channel(sidecar.grpc_target, options=OPTIONS) as channel,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        first = model_infer(channel, at_the_limit, f"Bearer {token}")
        assert first[0] == grpc.StatusCode.RESOURCE_EXHAUSTED, first
        rest = pool.submit(
            httpx.post,
            f"{sidecar.url}/predict",
            content=all_but_the_last_byte(realistic_body(1 << 20)[0], sent, go),
            headers=headers,
            timeout=300,
        )
        try:
            assert sent.wait(60), "the /predict body was not sent"
            time.sleep(1)  # the sidecar reads what it may of it
            before = memory_mb(sidecar.process.pid, "VmRSS")
            waiting = pool.submit(model_infer, channel, at_the_limit, f"Bearer {token}")
            time.sleep(3)
            grown = memory_mb(sidecar.process.pid, "VmRSS") - before
            assert not waiting.done(), waiting.result()
            late = model_infer(sidecar.grpc_target, small, f"Bearer {token}", timeout=1)
            assert late[0] == grpc.StatusCode.DEADLINE_EXCEEDED, late
            started = time.monotonic()
            refused = model_infer(sidecar.grpc_target, small, None)
            assert refused == (grpc.StatusCode.UNAUTHENTICATED, "token missing")
            assert time.monotonic() - started < 1
        finally:
            go.set()
        assert rest.result(timeout=120).status_code == 200
        code, details = waiting.result(timeout=120)
    print(f"waiting for the slot, a message at the limit took +{grown:.1f} MB")
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details  # read and forwarded at last
    assert PREDICTOR_REFUSES in str(details)
    assert grown < WAITING_MB, f"+{grown:.1f} MB while it waited"
    served = model_infer(sidecar.grpc_target, small, f"Bearer {token}")
    assert served[0] == grpc.StatusCode.OK  # the late call gave its turn back
