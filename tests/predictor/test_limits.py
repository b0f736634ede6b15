"""The predictor's own request body limit (MAX_REQUEST_BYTES): a larger body gets a 413
`{"error": "request body too large"}` before it is parsed, whether its size is announced
or streamed; the sidecar in front has the same limit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from agi_credit.store import ModelStore
from tests.bodies import APPLICANT, v2_body
from tests.servers import Server, running_server

LIMIT = 16 * 1024
TOO_LARGE = {"error": "request body too large"}


@pytest.fixture(scope="module")
def limited(
    serving_store: ModelStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("limited") / "predictor.log"
    env = {"MAX_REQUEST_BYTES": str(LIMIT)}
    with running_server(["--store", str(serving_store.root)], log, env=env) as server:
        yield server


def test_a_body_within_the_limit_is_scored(limited: Server) -> None:
    response = httpx.post(
        f"{limited.url}/v2/models/agi-credit/infer", json=v2_body([APPLICANT] * 10)
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/v2/models/agi-credit/infer", "/v1/models/agi-credit:predict"])
def test_a_larger_body_is_refused_with_413_announced_or_streamed(
    limited: Server, path: str
) -> None:
    body = httpx.Request("POST", "/", json=v2_body([APPLICANT] * 1000)).content
    assert len(body) > LIMIT
    announced = httpx.post(f"{limited.url}{path}", content=body)
    assert announced.status_code == 413 and announced.json() == TOO_LARGE
    chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    streamed = httpx.post(f"{limited.url}{path}", content=iter(chunks))  # no Content-Length
    assert streamed.status_code == 413 and streamed.json() == TOO_LARGE
    assert httpx.get(f"{limited.url}/v2/health/ready").status_code == 200  # still serving


def test_the_default_limit_is_the_sidecars() -> None:
    from agi_credit.settings import AuthSettings, PredictorSettings

    assert PredictorSettings().max_request_bytes == AuthSettings().max_request_bytes == 64 << 20
