"""The chart's standard-library scripts (charts/agi-credit/files/), run for real against
stand-ins: the metrics relay, the data download and the `helm test` client."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.chart.chart import CHART

FILES = CHART / "files"
TOKEN = "a-token"


class _Stand_in(BaseHTTPRequestHandler):
    """The predictor's /metrics, the sidecar's (on its metrics port) and its public routes,
    enough for the scripts."""

    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._reply(
                200, b"agi_credit_inference_requests_total 3\n", "text/plain; version=0.0.4"
            )
        elif self.path == "/sidecar-metrics":
            self._reply(200, b"agi_credit_users_file_ok 1.0", "text/plain; version=0.0.4")
        elif self.path in ("/health", "/ready"):
            self._json(200, {"status": "ok"})
        elif self.path == "/model-info":
            self._json(*self._authorized({"current_version": "v1", "models": []}))
        elif self.path == "/data.csv":
            self._reply(200, b"SK_ID_CURR,TARGET\n1,0\n", "text/csv")
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/login":
            ok = body == {"username": "ci", "password": "pw"}
            self._json(
                200 if ok else 401, {"token": TOKEN} if ok else {"error": "invalid credentials"}
            )
        elif self.path == "/predict":
            self._json(
                *self._authorized({"model_version": "v1", "prediction": 0, "prob_default": 0.1})
            )
        else:
            self._json(404, {"error": "not found"})

    def _authorized(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return 200, body
        return 401, {"error": "token missing"}

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._reply(status, json.dumps(body).encode(), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stand_in)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FILES / script)],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# No proxy from the environment for loopback calls.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str) -> tuple[int, bytes]:
    try:
        with DIRECT.open(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


@contextmanager
def running_relay(upstreams: str) -> Iterator[str]:
    """metrics_relay.py with METRICS_UPSTREAM=`upstreams`, until its /healthz answers; its URL."""
    port = free_port()
    relay = subprocess.Popen(
        [sys.executable, str(FILES / "metrics_relay.py")],
        env={"METRICS_PORT": str(port), "METRICS_UPSTREAM": upstreams},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _ = get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "the relay did not start"
                time.sleep(0.05)
        assert status == 200
        yield f"http://127.0.0.1:{port}"
    finally:
        relay.terminate()
        relay.wait(timeout=10)


def test_the_metrics_relay_serves_the_predictors_metrics_and_nothing_else(stand_in: str) -> None:
    with running_relay(f"{stand_in}/metrics") as relay:
        assert get(f"{relay}/metrics") == (200, b"agi_credit_inference_requests_total 3\n")
        assert get(f"{relay}/model-info")[0] == 404
        assert get(f"{relay}/v2/models/agi-credit")[0] == 404
        post = urllib.request.Request(f"{relay}/metrics", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            DIRECT.open(post, timeout=5)
        refused.value.close()
        assert refused.value.code == 405


def test_the_metrics_relay_concatenates_the_predictors_and_the_sidecars_metrics(
    stand_in: str,
) -> None:
    with running_relay(f"{stand_in}/metrics, {stand_in}/sidecar-metrics") as relay:
        assert get(f"{relay}/metrics") == (
            200,
            b"agi_credit_inference_requests_total 3\nagi_credit_users_file_ok 1.0\n",
        )
    down = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens there
    with running_relay(f"{stand_in}/metrics,{down}") as relay:
        assert get(f"{relay}/metrics") == (502, f"{down} is unreachable\n".encode())


def test_the_data_download_checks_the_sha256(tmp_path: Path, stand_in: str) -> None:
    out = tmp_path / "application_train.csv"
    good = hashlib.sha256(b"SK_ID_CURR,TARGET\n1,0\n").hexdigest()
    done = run(
        "fetch_data.py", DATA_URL=f"{stand_in}/data.csv", DATA_PATH=str(out), DATA_SHA256=good
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == b"SK_ID_CURR,TARGET\n1,0\n"

    out.unlink()
    bad = run(
        "fetch_data.py", DATA_URL=f"{stand_in}/data.csv", DATA_PATH=str(out), DATA_SHA256="0" * 64
    )
    assert bad.returncode != 0 and "differs from DATA_SHA256" in bad.stderr
    assert list(tmp_path.iterdir()) == []  # no file, no partial file


def test_the_helm_test_client_logs_in_and_predicts(stand_in: str) -> None:
    done = run("smoke_test.py", BASE_URL=stand_in, TEST_USERNAME="ci", TEST_PASSWORD="pw")
    assert done.returncode == 0, done.stdout + done.stderr
    for step in (
        "GET /ready",
        "POST /predict without a token is 401",
        "POST /login",
        "GET /model-info",
        "POST /predict",
    ):
        assert f"ok   {step}" in done.stdout


def test_the_helm_test_client_fails_on_a_wrong_password(stand_in: str) -> None:
    done = run("smoke_test.py", BASE_URL=stand_in, TEST_USERNAME="ci", TEST_PASSWORD="wrong")
    assert done.returncode == 1 and "FAIL POST /login" in done.stdout


def test_the_helm_test_client_without_credentials_checks_only_the_public_door(
    stand_in: str,
) -> None:
    done = run("smoke_test.py", BASE_URL=stand_in)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SKIPPED login and predict" in done.stdout
