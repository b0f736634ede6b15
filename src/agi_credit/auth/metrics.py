"""The sidecar's Prometheus metrics: the state of its users file, for an alert.

Served on 127.0.0.1 only (AUTH_METRICS_PORT), never on the public port. The registry is
the sidecar's own, without prometheus_client's process, platform and gc collectors: the
chart's relay appends this exposition to the predictor's, which has those families already,
and a family named twice would make the whole scrape invalid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from agi_credit.auth.users import Users

log = logging.getLogger("agi_credit.auth")


def users_registry(users: Users) -> CollectorRegistry:
    """`agi_credit_users_file_ok` and `agi_credit_users`, read from `users` at each scrape
    (which checks the file first, as a request does: at most once a second)."""
    registry = CollectorRegistry()

    def file_ok() -> float:
        users.refresh()
        return float(users.file_ok)

    Gauge(
        "agi_credit_users_file_ok",
        "1 when nothing is wrong with the sidecar's users: the users file was read fine, or no "
        "file is in use (the bootstrap admin, or the dev default); 0 while the last check could "
        "not use the file (the users loaded before stay; the sidecar logs why at each check).",
        registry=registry,
    ).set_function(file_ok)
    Gauge(
        "agi_credit_users",
        "Users loaded and enabled: 0 when no one can log in.",
        registry=registry,
    ).set_function(lambda: float(users.enabled))
    return registry


def serve_metrics(registry: CollectorRegistry, port: int) -> Callable[[], None] | None:
    """Serve `registry` on 127.0.0.1:`port` from a thread; the function that stops it. A port
    that cannot be bound is logged and the sidecar serves on without metrics: the door
    matters more, and the relay's 502 shows the gap to Prometheus."""
    try:
        server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        log.error(
            f"cannot serve the sidecar's metrics on 127.0.0.1:{port}: {exc.strerror or exc}; "
            "serving without them (AUTH_METRICS_PORT)",
            extra={"event": "metrics_unavailable"},
        )
        return None

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
