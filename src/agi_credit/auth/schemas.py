"""The sidecar's request and response bodies. The request models are the parsers: FastAPI
validates each body with its model, the OpenAPI document is generated from the same models,
and `error_message` turns a validation error into the origin's `{"error": ...}` text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Strict,
    Tag,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_core import ErrorDetails, PydanticCustomError

from agi_credit.model_metadata import Engine, VersionInfo

EXAMPLE_APPLICANT: dict[str, Any] = {
    "AMT_INCOME_TOTAL": 5000,
    "AMT_CREDIT": 200000,
    "DAYS_BIRTH": -12000,
    "AMT_GOODS_PRICE": 180000,
}

BODY_ERROR = "request_body"
"""The error type of the body models' own checks; its message is the answer as it is."""

NOT_JSON = "the body must be JSON"


def body_error(message: str) -> PydanticCustomError:
    """A validation error whose message is the `{"error": ...}` the client gets."""
    return PydanticCustomError(BODY_ERROR, message)


# --- requests ---------------------------------------------------------------------------------


# The origin's dev login, accepted only with ENV=dev: an example, not a secret.
_DEV_LOGIN: JsonDict = {"username": "admin", "password": "123456"}  # nosec


class Login(BaseModel):
    """A user name and password, exchanged for a token."""

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={"examples": [_DEV_LOGIN]},
    )

    username: str
    password: str

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise body_error('the body must be {"username": ..., "password": ...}')
        return data


Feature = Annotated[float, Strict(), AllowInfNan(False)]
"""A feature's value: a finite JSON number (booleans, strings and null are refused)."""

Applicant = Annotated[dict[str, Feature], Field(min_length=1)]
"""One applicant: an object of features."""


def _kind(body: Any) -> str:
    return "batch" if isinstance(body, list) else "applicant"


class PredictBody(
    RootModel[
        Annotated[
            Annotated[Applicant, Tag("applicant")]
            | Annotated[list[Applicant], Field(min_length=1), Tag("batch")],
            Discriminator(_kind),
        ]
    ]
):
    """One applicant (an object of features), or a batch (a non-empty list of them, each
    with the same features).

    The body of /predict as the OpenAPI document shows it. /predict does not build it: a
    body at the size limit holds some 630,000 applicants, which `predict_body` reads as they
    arrive into one array per feature, with these rules and the origin's messages."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                EXAMPLE_APPLICANT,
                [EXAMPLE_APPLICANT, {**EXAMPLE_APPLICANT, "DAYS_BIRTH": -9000}],
            ]
        }
    )


def error_message(errors: Sequence[ErrorDetails]) -> str:
    """The origin's message for the first problem FastAPI found in a request."""
    if not errors:
        return "invalid request"
    error = errors[0]
    kind, loc = error["type"], tuple(error["loc"])
    where = loc[1:] if loc[:1] == ("body",) else loc
    if kind == "json_invalid" or isinstance(error.get("input"), bytes | bytearray):
        return NOT_JSON  # not JSON, or a Content-Type that is not JSON's
    if kind == "missing" and loc == ("body",):
        return NOT_JSON  # no body at all
    if kind == BODY_ERROR:
        return error["msg"]
    name = next((part for part in reversed(where) if isinstance(part, str)), None)
    if name is None:
        return "invalid request"
    return f"missing field: {name}" if kind == "missing" else f"invalid type for {name}"


# --- responses --------------------------------------------------------------------------------


class Error(BaseModel):
    error: str = Field(examples=["invalid credentials"])


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Token(BaseModel):
    token: str = Field(description="A JWT; send it as `Authorization: Bearer`.")


class Jwks(BaseModel):
    keys: list[dict[str, Any]]


class Verified(BaseModel):
    user: str


class Prediction(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [{"model_version": "v2", "prediction": 0, "prob_default": 0.1073}]
        },
    )
    model_version: str
    prediction: int = Field(description="1 when prob_default ≥ the version's threshold.")
    prob_default: float


class ModelEntry(BaseModel):
    """A version the predictor serves."""

    version: str
    created_at: str | None
    features: list[str]
    engine: Engine | None = Field(description="What scores it: its compiled form, or R.")


class ModelDetails(BaseModel):
    """What the predictor knows of every version, failed ones included (the admin role)."""

    store_current_version: str | None = Field(
        description="The store's current version, which the predictor may not serve yet."
    )
    reload_error: str | None = Field(description="Why the last reload failed, if it did.")
    versions: dict[str, VersionInfo] = Field(
        description="Every version: status, artifact sha256, load error, parity gap..."
    )


class ModelInfo(BaseModel):
    current_version: str | None
    models: list[ModelEntry]
    details: ModelDetails | None = Field(
        default=None, description="Only for users with the admin role."
    )
