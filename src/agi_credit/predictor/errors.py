"""Errors of the predictor, as KServe's error types so its handlers give the status:
InvalidInput → 400, ModelNotFound → 404, NotImplementedError → 501."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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


SHOWN_CHARS = 64
"""How much of a name, datatype or shape a client sent an error message repeats: enough to
recognise it, not enough for a request to flood the answer and the log."""


def shown(sent: object, *, limit: int = SHOWN_CHARS) -> str:
    """`sent` as text, cut at `limit` characters."""
    text = str(sent)
    return text if len(text) <= limit else text[:limit] + "…"


def shown_list(sent: list[Any], *, limit: int = 5) -> str:
    """The first `limit` items of `sent`, each `shown`, as a list."""
    items = ", ".join(repr(shown(item)) for item in sent[:limit])
    return f"[{items}{f', … ({len(sent) - limit} more)' if len(sent) > limit else ''}]"


def check_version_name(version: str) -> str:
    """`version` when it is a version name (`vN`); `InvalidRequest` (a 400) otherwise."""
    try:
        version_number(version)
    except InvalidVersionName as exc:
        raise InvalidRequest(str(InvalidVersionName(shown(version)))) from exc
    return version


def describe_validation_errors(errors: Iterable[Mapping[str, Any]], *, limit: int = 3) -> str:
    """pydantic's errors as `where: what; …`, without the values that were sent (pydantic's
    own messages and FastAPI's 422 bodies repeat them). Locations that only name the model
    or the `bytes` alternative of a body (KServe's `InferenceRequest | bytes`) are left out."""
    problems = []
    for error in errors:
        where = [str(p) for p in error.get("loc", ()) if p not in ("body", "InferenceRequest")]
        if where == ["bytes"]:
            continue
        problems.append(f"{'.'.join(where) or 'body'}: {error.get('msg', 'invalid')}")
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more if problems else "invalid request"
