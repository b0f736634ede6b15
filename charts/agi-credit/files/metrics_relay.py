"""The pod's /metrics, relayed from its loopback (helm chart, metrics.enabled).

The predictor and the auth sidecar's metrics listen on 127.0.0.1, and the sidecar's public
port passes no /metrics, so this relay, run from the auth image with Python's standard
library only, answers GET /metrics (and /healthz for its probes) on METRICS_PORT and nothing
else: 404 for every other path, 405 for every other method. It never forwards a request
body, a query or a header.

METRICS_UPSTREAM is a comma-separated list of URLs (the predictor's, then the sidecar's),
fetched in order and concatenated: their metric families must not overlap. One that cannot
be fetched makes the whole answer a 502 naming it, so that Prometheus sees the gap.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("METRICS_PORT", "9090"))
UPSTREAMS = [
    url.strip()
    for url in os.environ.get("METRICS_UPSTREAM", "http://127.0.0.1:8080/metrics").split(",")
    if url.strip()
]


def scrape() -> tuple[int, bytes, str]:
    """Status, body and content type of the concatenated expositions."""
    parts: list[bytes] = []
    content_type = ""
    for url in UPSTREAMS:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                content_type = content_type or response.headers.get("Content-Type", "text/plain")
                body = response.read()
        except (OSError, urllib.error.URLError):
            return 502, f"{url} is unreachable\n".encode(), "text/plain"
        # Each exposition ends its last line; one that does not would merge with the next.
        parts.append(body if not body or body.endswith(b"\n") else body + b"\n")
    return 200, b"".join(parts), content_type or "text/plain"


class Relay(BaseHTTPRequestHandler):
    server_version = "agi-credit-metrics-relay"
    sys_version = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._reply(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/metrics":
            self._reply(*scrape())
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
