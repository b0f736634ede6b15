"""The predictor's /metrics, relayed from the pod's loopback (helm chart, metrics.enabled).

The predictor listens on 127.0.0.1 and the auth sidecar passes no /metrics, so this relay,
run from the auth image with Python's standard library only, answers GET /metrics (and
/healthz for its probes) on METRICS_PORT and nothing else: 404 for every other path, 405
for every other method. It never forwards a request body, a query or a header.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("METRICS_PORT", "9090"))
UPSTREAM = os.environ.get("METRICS_UPSTREAM", "http://127.0.0.1:8080/metrics")


class Relay(BaseHTTPRequestHandler):
    server_version = "agi-credit-metrics-relay"
    sys_version = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._reply(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/metrics":
            try:
                with urllib.request.urlopen(UPSTREAM, timeout=5) as response:
                    content_type = response.headers.get("Content-Type", "text/plain")
                    self._reply(200, response.read(), content_type)
            except (OSError, urllib.error.URLError):
                self._reply(502, b"the predictor's /metrics is unreachable\n", "text/plain")
        else:
            self._reply(404, b"not found\n", "text/plain")

    def do_HEAD(self) -> None:
        self._reply(405, b"", "text/plain")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: Prometheus scrapes every few seconds."""


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Relay).serve_forever()
