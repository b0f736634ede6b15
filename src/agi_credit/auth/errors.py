"""Errors of the auth sidecar; each carries its HTTP status. Bodies are `{"error": "..."}`,
as the origin's API answered."""

from __future__ import annotations

from agi_credit._errors import AgiCreditError


class ApiError(AgiCreditError):
    status_code = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ApiError):
    status_code = 400


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class TooManyRequests(ApiError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many login attempts; retry later", headers={"Retry-After": str(retry_after)}
        )


class InternalError(ApiError):
    """The predictor failed on this request (R, say): the details are in its log, under the
    request id the client gets."""

    status_code = 500


class NotImplementedByModel(ApiError):
    status_code = 501


class BadGateway(ApiError):
    status_code = 502


class UpstreamUnavailable(ApiError):
    status_code = 503


class InsecureConfiguration(AgiCreditError):
    """The sidecar refuses to start (ENV=prod) with settings that are not safe."""


class UnusableUsersFile(InsecureConfiguration):
    """A users file that cannot be used as a whole: unreadable, not YAML, not a `users:`
    mapping, or (`still_enabled` set) a mapping with an invalid entry. `still_enabled` is
    then the names that mapping lists without `disabled: true`."""

    def __init__(self, message: str, *, still_enabled: frozenset[str] | None = None) -> None:
        super().__init__(message)
        self.still_enabled = still_enabled
