"""Structured logs: JSON lines on stdout, ours and the servers' we embed (KServe, uvicorn)."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from agi_credit._asgi import current_request_id

_JSON_LOGGERS = ("agi_credit", "kserve", "uvicorn", "uvicorn.error")
# Per-request lines we replace with our own (request id, version, path, latency, user):
# uvicorn's access log and KServe's timing trace.
_SILENCED = ("uvicorn.access", "kserve.trace")


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every line logged while it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get()
        if request_id is not None and getattr(record, "request_id", None) is None:
            record.request_id = request_id
        return True


def configure_logging(level: int | str = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    for name in _JSON_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    for name in _SILENCED:
        logging.getLogger(name).setLevel(logging.WARNING)
