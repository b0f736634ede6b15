"""A stand-in upstream for the sidecar: a loopback HTTP server that records every request it
receives (method, path, headers) and answers like the predictor would. It shows what the
sidecar lets through: the paths, and the headers the predictor would believe."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.bodies import FEATURES
from tests.servers import PASSWORD, USER, agi_credit_process, free_port

MODEL_METADATA: dict[str, Any] = {
    "name": "agi-credit",
    "versions": ["v1"],
    "platform": "agi-credit-r",
    "inputs": [],
    "outputs": [],
    "parameters": {
        "current_version": "v1",
        "model_versions": {
            "v1": {
                "status": "serving",
                "created_at": "2026-11-26 10:00:00",
                "engine": "compiled",
                "features": FEATURES,
            }
        },
    },
}


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]

    def values(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive)."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}


@dataclass
class Echo:
    url: str
    received: list[Received] = field(default_factory=list)

    def reached(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


def _answer(path: str, body: bytes, header_length: str | None) -> tuple[int, dict[str, Any]]:
    """The predictor's answer, as far as the sidecar needs one (outputs in JSON, also to a
    binary request: its JSON header is read)."""
    if path.endswith("/infer"):
        request = json.loads(body[: int(header_length)] if header_length else body or b"{}")
        rows = request["inputs"][0]["shape"][0] if request.get("inputs") else 1
        return 200, {
            "model_name": "agi-credit",
            "outputs": [
                {
                    "name": "prob_default",
                    "datatype": "FP64",
                    "shape": [rows],
                    "data": [0.25] * rows,
                },
                {"name": "prediction", "datatype": "INT64", "shape": [rows], "data": [0] * rows},
            ],
            "parameters": {"model_version": "v1"},
        }
    if path == "/v2/models/agi-credit":
        return 200, MODEL_METADATA
    return 200, {"echo": path}


@contextmanager
def running_echo() -> Iterator[Echo]:
    """The echo upstream on a free loopback port, in a thread of the test process."""
    echo = Echo(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def _handle(self) -> None:
            echo.received.append(Received(self.command, self.path, list(self.headers.items())))
            try:
                header_length = self.headers.get("inference-header-content-length")
                status, answer = _answer(self.path, self._read_body(), header_length)
            except (OSError, ValueError):
                self.close_connection = True
                return
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_HEAD = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    echo.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield echo
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def sidecar_in_front_of(
    echo: Echo, log_path: Path, *, env: dict[str, str], metrics_port: int = 0
) -> Iterator[str]:
    """`agi-credit auth --upstream <echo>` until it answers; its URL. Its metrics are on
    127.0.0.1:`metrics_port` (none by default: tests run many sidecars at once)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = ["auth", "--upstream", echo.url, "--port", str(port), "--grpc-port", "0"]
    with agi_credit_process(
        [*command, "--metrics-port", str(metrics_port)],
        log_path,
        f"{url}/health",
        env=env,
    ):
        yield url


def bearer(url: str, user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    response = httpx.post(f"{url}/login", json={"username": user, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}
