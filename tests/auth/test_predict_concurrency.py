"""MAX_CONCURRENT_PREDICTS=1: a real sidecar in front of the real predictor serves one
/predict at a time, from reading its body to sending its answer. Another waits, its body
unread, and is answered once the first is, with the answer it gets alone; a request without
a token is refused at once even then; a client that gives up while it waits keeps no slot.

The slot is held by an upload stopped halfway (the sidecar reads a body only once it has a
slot): every order below is the sidecar's own, read from its access log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import orjson

from tests.servers import Sidecar

ROWS = 2000
SMALL = orjson.dumps(
    [{"AMT_INCOME_TOTAL": 1, "AMT_CREDIT": 2, "DAYS_BIRTH": 3, "AMT_GOODS_PRICE": 4}]
)


def _batch(seed: int) -> bytes:
    """`ROWS` different applicants."""
    return orjson.dumps(
        [
            {
                "AMT_INCOME_TOTAL": 1000.0 + 37 * i + seed,
                "AMT_CREDIT": 50_000.0 + 911 * i,
                "DAYS_BIRTH": -8000 - 7 * i,
                "AMT_GOODS_PRICE": 40_000.0 + 733 * i + seed,
            }
            for i in range(ROWS)
        ]
    )


def _post(
    sidecar: Sidecar,
    content: bytes | Iterator[bytes],
    request_id: str,
    *,
    token: str | None,
    timeout: float = 60,
) -> httpx.Response:
    headers = {"content-type": "application/json", "x-request-id": request_id}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(f"{sidecar.url}/predict", content=content, headers=headers, timeout=timeout)


class StalledUpload:
    """A /predict whose body stops halfway until `finish()`, which returns its answer."""

    def __init__(self, sidecar: Sidecar, body: bytes, token: str, pool: ThreadPoolExecutor) -> None:
        self._go = threading.Event()
        half = len(body) // 2

        def chunks() -> Iterator[bytes]:
            yield body[:half]
            assert self._go.wait(60), "never finished"
            yield body[half:]

        self._answer: Future[httpx.Response] = pool.submit(
            _post, sidecar, chunks(), "stalled", token=token
        )

    def finish(self) -> httpx.Response:
        self._go.set()
        return self._answer.result(timeout=60)


def _access_order(sidecar: Sidecar) -> list[tuple[str, int]]:
    """(request id, status) of each /predict, in the order the sidecar finished them."""
    return [
        (record["request_id"], record["status"])
        for record in sidecar.records()
        if record.get("event") == "access" and record.get("path") == "/predict"
    ]


def _eventually(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def test_one_slot_serves_one_predict_at_a_time_and_a_401_never_waits(
    one_slot_sidecar: Sidecar,
) -> None:
    token = one_slot_sidecar.token()
    first, second = _batch(0), _batch(1)
    alone = {  # the answers, each request alone
        body: _post(one_slot_sidecar, body, f"alone-{i}", token=token).json()
        for i, body in enumerate((first, second))
    }
    assert len(alone[first]) == ROWS and alone[first] != alone[second]

    with ThreadPoolExecutor(max_workers=2) as pool:
        stalled = StalledUpload(one_slot_sidecar, first, token, pool)
        # The slot is the stalled upload's once a request with a token no longer gets in:
        # each probe gives up after 1 s, a client that leaves while it waits. Its body is
        # small: uvicorn reads it whole, and so sees the client leave (a large one waits in
        # the socket, read when its turn comes; answered then, to no one).
        probes = 0
        while True:
            probes += 1
            assert probes <= 20, "the stalled upload never took the slot"
            try:
                _post(one_slot_sidecar, SMALL, f"probe-{probes}", token=token, timeout=1)
            except httpx.TimeoutException:
                break

        # No token, or a bad one: 401 at once, without waiting for the slot.
        for request_id, sent in (("no-token", None), ("bad-token", token[:-4] + "AAAA")):
            started = time.monotonic()
            refused = _post(one_slot_sidecar, second, request_id, token=sent, timeout=5)
            assert refused.status_code == 401, refused.text
            assert time.monotonic() - started < 2

        waiting = pool.submit(_post, one_slot_sidecar, second, "waiting", token=token)
        time.sleep(1.5)
        assert not waiting.done(), "served while the slot was taken"
        assert ("waiting", 200) not in _access_order(one_slot_sidecar)

        answered = stalled.finish()
        assert answered.status_code == 200, answered.text
        assert answered.json() == alone[first]
        served = waiting.result(timeout=60)
        assert served.status_code == 200, served.text
        assert served.json() == alone[second]

    # The slot came back from each probe whose client left: the next request is served.
    after = _post(one_slot_sidecar, second, "after", token=token, timeout=10)
    assert after.status_code == 200 and after.json() == alone[second]

    _eventually(lambda: ("after", 200) in _access_order(one_slot_sidecar))
    order = [entry for entry in _access_order(one_slot_sidecar) if not entry[0].startswith("alone")]
    probes_that_waited = [(f"probe-{probes}", 499)]  # dropped when its turn came
    assert order[-4:] == [("stalled", 200), *probes_that_waited, ("waiting", 200), ("after", 200)]
    assert ("no-token", 401) in order[: order.index(("stalled", 200))]
    assert ("bad-token", 401) in order[: order.index(("stalled", 200))]
    # A client leaving is no error of the sidecar's: no ERROR line, no traceback.
    assert not [r for r in one_slot_sidecar.records() if r.get("level") == "ERROR"]
    assert "Traceback" not in one_slot_sidecar.logs()
