"""Shapes of the sidecar's API, for its OpenAPI document (with examples)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_APPLICANT: dict[str, Any] = {
    "AMT_INCOME_TOTAL": 5000,
    "AMT_CREDIT": 200000,
    "DAYS_BIRTH": -12000,
    "AMT_GOODS_PRICE": 180000,
}


class Error(BaseModel):
    error: str = Field(examples=["invalid credentials"])


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Login(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"example": {"username": "admin", "password": "123456"}}
    )
    username: str
    password: str


class Token(BaseModel):
    token: str = Field(description="A JWT (HS256); send it as `Authorization: Bearer`.")


class Jwks(BaseModel):
    keys: list[dict[str, Any]]


class Verified(BaseModel):
    user: str


class Prediction(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "example": {"model_version": "v2", "prediction": 0, "prob_default": 0.1073}
        },
    )
    model_version: str
    prediction: int = Field(description="1 when prob_default ≥ the version's threshold.")
    prob_default: float


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str
    created_at: str | None
    features: list[str]


class ModelInfo(BaseModel):
    current_version: str | None
    models: list[ModelEntry]


class PredictBody(BaseModel):
    """Documentation only: the body is parsed by hand to answer the origin's errors."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"type": "object", "additionalProperties": {"type": "number"}},
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "object", "additionalProperties": {"type": "number"}},
                },
            ],
            "example": EXAMPLE_APPLICANT,
        }
    )


def body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a JSON request body the route parses itself."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    if model is PredictBody:
        schema = {k: v for k, v in schema.items() if k in ("oneOf", "example", "description")}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": schema.get("example")}},
        }
    }
