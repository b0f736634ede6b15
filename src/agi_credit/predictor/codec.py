"""Codecs: v2 tensors and v1 instances in, one [rows, features] float64 matrix out; and the
matching responses. Everything is validated here, before anything reaches a scorer."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from agi_credit.predictor.errors import InvalidRequest
from agi_credit.predictor.schema import FeatureSchema

NUMERIC_DATATYPES = ("FP64", "FP32", "INT64", "INT32")
OUTPUTS = [
    {"name": "prob_default", "datatype": "FP64", "shape": [-1]},
    {"name": "prediction", "datatype": "INT64", "shape": [-1]},
]


def _tensor(request_input: Any) -> np.ndarray:
    name, datatype = request_input.name, request_input.datatype
    if datatype not in NUMERIC_DATATYPES:
        raise InvalidRequest(
            f"input {name} has datatype {datatype}; expected one of {', '.join(NUMERIC_DATATYPES)}"
        )
    try:
        values = request_input.as_numpy()
    except Exception as exc:
        raise InvalidRequest(
            f"input {name}: its data does not match datatype {datatype} "
            f"and shape {list(request_input.shape)}"
        ) from exc
    if values.dtype.kind not in "iuf":
        raise InvalidRequest(f"input {name}: values must be numbers")
    if list(values.shape) != [int(d) for d in request_input.shape]:
        raise InvalidRequest(
            f"input {name}: {values.size} values do not fill shape {list(request_input.shape)}"
        )
    # Integers are accepted and become doubles (recipes' bake rejects integer columns).
    return np.asarray(values, dtype=np.float64)


def decode_v2(request: InferRequest, schema: FeatureSchema) -> np.ndarray:
    """One 1-D tensor per feature (named by it), or one [rows, features] tensor in the
    model's feature order."""
    inputs = request.inputs
    if not inputs:
        raise InvalidRequest("the request has no inputs")
    if len(inputs) == 1 and inputs[0].name not in schema.features:
        matrix = _tensor(inputs[0])
        if matrix.ndim != 2 or matrix.shape[1] != len(schema.features):
            raise InvalidRequest(
                f"input {inputs[0].name} has shape {list(matrix.shape)}; send one [rows, "
                f"{len(schema.features)}] tensor in feature order {list(schema.features)}, "
                "or one tensor per feature named by it"
            )
        schema.check_rows(matrix.shape[0])
    else:
        names = [i.name for i in inputs]
        if len(set(names)) != len(names):
            raise InvalidRequest(
                f"duplicate inputs: {sorted({n for n in names if names.count(n) > 1})}"
            )
        schema.check_names(names)
        columns = {i.name: _tensor(i) for i in inputs}
        for name, column in columns.items():
            if column.ndim == 2 and column.shape[1] == 1:
                columns[name] = column[:, 0]
            elif column.ndim != 1:
                raise InvalidRequest(
                    f"input {name} has shape {list(column.shape)}; a feature tensor is 1-D [rows]"
                )
        lengths = {name: len(c) for name, c in columns.items()}
        if len(set(lengths.values())) != 1:
            raise InvalidRequest(f"tensor lengths differ: {lengths}")
        schema.check_rows(next(iter(lengths.values())))
        matrix = np.column_stack([columns[f] for f in schema.features])
    schema.check_values(matrix)
    return matrix


def _number(value: object, feature: str, row: int, schema: FeatureSchema) -> float:
    if value is None:
        if feature in schema.nullable:
            return math.nan
        raise InvalidRequest(
            f"missing value for {feature} in instance {row}; this model cannot impute it"
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidRequest(f"invalid type for {feature} in instance {row}: expected a number")
    return float(value)


def decode_v1(payload: dict[str, Any], schema: FeatureSchema) -> np.ndarray:
    """`{"instances": [{feature: value, …}, …]}`, or instances as lists in feature order."""
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list):
        raise InvalidRequest('the body must be {"instances": [...]}')
    schema.check_rows(len(instances))
    features = schema.features
    rows = np.empty((len(instances), len(features)), dtype=np.float64)
    for i, instance in enumerate(instances):
        if isinstance(instance, dict):
            if instance.keys() != set(features):
                try:
                    schema.check_names(list(instance))
                except InvalidRequest as exc:
                    raise InvalidRequest(f"instance {i}: {exc}") from exc
            values = [instance[f] for f in features]
        elif isinstance(instance, list):
            if len(instance) != len(features):
                raise InvalidRequest(
                    f"instance {i} has {len(instance)} values; expected "
                    f"{len(features)} in feature order {list(features)}"
                )
            values = instance
        else:
            raise InvalidRequest(f"instance {i} must be an object of features or a list")
        rows[i] = [_number(v, f, i, schema) for v, f in zip(values, features, strict=True)]
    schema.check_values(rows)
    return rows


def predictions(prob: np.ndarray, threshold: float) -> np.ndarray:
    return (prob >= threshold).astype(np.int64)


def encode_v2(
    request: InferRequest, *, model_name: str, version: str, prob: np.ndarray, threshold: float
) -> InferResponse:
    binary = request.use_binary_outputs
    prob_out = InferOutput(name="prob_default", shape=[len(prob)], datatype="FP64")
    prob_out.set_data_from_numpy(prob, binary_data=binary)
    pred_out = InferOutput(name="prediction", shape=[len(prob)], datatype="INT64")
    pred_out.set_data_from_numpy(predictions(prob, threshold), binary_data=binary)
    return InferResponse(
        response_id=request.id or "",
        model_name=model_name,
        model_version=version,
        infer_outputs=[prob_out, pred_out],
        parameters={"model_version": version},
        use_binary_outputs=binary,
        requested_outputs=request.request_outputs,
    )


def encode_v1(*, version: str, prob: np.ndarray, threshold: float) -> dict[str, Any]:
    labels = predictions(prob, threshold)
    return {
        "predictions": [
            {"prob_default": float(p), "prediction": int(y), "model_version": version}
            for p, y in zip(prob, labels, strict=True)
        ]
    }


def encode_explanation(
    *,
    version: str,
    features: tuple[str, ...],
    matrix: np.ndarray,
    prob: np.ndarray,
    intercept: float,
    contributions: np.ndarray,
) -> dict[str, Any]:
    """Per row: each feature's contribution to the log-odds of default (zero at the training
    mean), largest adverse (most positive) first: the reason codes."""
    explanations = []
    for row, p, terms in zip(matrix, prob, contributions, strict=True):
        order = np.argsort(-terms, kind="stable")
        explanations.append(
            {
                "model_version": version,
                "prob_default": float(p),
                "log_odds": float(intercept + terms.sum()),
                "intercept": intercept,
                "contributions": [
                    {
                        "feature": features[j],
                        "value": None if np.isnan(row[j]) else float(row[j]),
                        "contribution": float(terms[j]),
                    }
                    for j in order
                ],
            }
        )
    return {"explanations": explanations}
