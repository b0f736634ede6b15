"""Run the auth sidecar with uvicorn."""

from __future__ import annotations

import uvicorn

from agi_credit._logging import configure_logging
from agi_credit.auth.app import create_app
from agi_credit.settings import AuthSettings


def run(settings: AuthSettings) -> None:
    """Check the configuration (prod refuses weak settings), then serve. Blocks."""
    configure_logging(settings.log_level)
    app = create_app(settings)
    # Our access log replaces uvicorn's; it never logs query strings or bodies.
    uvicorn.run(
        app,
        host=settings.auth_host,
        port=settings.auth_port,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )
