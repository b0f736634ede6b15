"""Errors of the predictor, as KServe's error types so its handlers give the status:
InvalidInput → 400, ModelNotFound → 404, NotImplementedError → 501."""

from __future__ import annotations

from kserve.errors import InvalidInput, ModelNotFound

from agi_credit._errors import AgiCreditError
from agi_credit.store import InvalidVersionName, version_number


class InvalidRequest(InvalidInput, AgiCreditError):
    """The request cannot be scored as sent; the message names the problem (never a value)."""


class VersionUnavailable(ModelNotFound, AgiCreditError):
    """The requested version is unknown, failed to load, or is not served."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.reason = message


class ExplanationUnavailable(NotImplementedError, AgiCreditError):
    """Reason codes are defined for recipe + glm models only."""


def check_version_name(version: str) -> str:
    """`version` when it is a version name (`vN`); `InvalidRequest` (a 400) otherwise."""
    try:
        version_number(version)
    except InvalidVersionName as exc:
        raise InvalidRequest(str(exc)) from exc
    return version
