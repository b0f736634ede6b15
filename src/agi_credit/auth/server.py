"""Run the auth sidecar with uvicorn."""

from __future__ import annotations

import uvicorn

from agi_credit._logging import configure_logging
from agi_credit.auth.app import create_app
from agi_credit.auth.config import load_config
from agi_credit.settings import Settings


def run(settings: Settings, *, upstream: str, host: str, port: int) -> None:
    """Check the configuration (prod refuses weak settings), then serve. Blocks."""
    configure_logging()
    app = create_app(load_config(settings, upstream=upstream))
    # Our access log replaces uvicorn's; it never logs query strings or bodies.
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )
