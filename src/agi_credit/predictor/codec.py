"""Codecs: v2 tensors and v1 instances in, one [rows, features] float64 matrix out; and the
matching responses. Everything is validated here, before anything reaches a scorer.

A v2 binary request (the binary tensor extension) is read here too, by `decode_v2_binary`,
into the same `InferRequest` as a JSON one: KServe's own reader trusts the header length and
each `binary_data_size`, and answers a 500 to any it cannot use."""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import numpy as np
import pydantic
from kserve.protocol.infer_type import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
)
from kserve.protocol.rest.v2_datamodels import InferenceRequest, RequestInput

from agi_credit.predictor.errors import (
    InvalidRequest,
    describe_validation_errors,
    shown,
    shown_list,
)
from agi_credit.predictor.schema import FeatureSchema

NUMERIC_DATATYPES = ("FP64", "FP32", "INT64", "INT32")
BINARY_DTYPES = {"FP64": "<f8", "FP32": "<f4", "INT64": "<i8", "INT32": "<i4"}
"""The numeric datatypes as the binary extension lays them out: little-endian."""
HEADER_LENGTH = "inference-header-content-length"
_BYTE_COUNT = re.compile(r"[0-9]{1,19}")
OUTPUTS = [
    {"name": "prob_default", "datatype": "FP64", "shape": [-1]},
    {"name": "prediction", "datatype": "INT64", "shape": [-1]},
]


def _tensor(request_input: Any) -> np.ndarray:
    name, datatype = shown(request_input.name), shown(request_input.datatype)
    if datatype not in NUMERIC_DATATYPES:
        raise InvalidRequest(
            f"input {name} has datatype {datatype}; expected one of {', '.join(NUMERIC_DATATYPES)}"
        )
    try:
        values = request_input.as_numpy()
    except Exception as exc:
        raise InvalidRequest(
            f"input {name}: its data does not match datatype {datatype} "
            f"and shape {shown(list(request_input.shape))}"
        ) from exc
    if values.dtype.kind not in "iuf":
        raise InvalidRequest(f"input {name}: values must be numbers")
    if list(values.shape) != [int(d) for d in request_input.shape]:
        raise InvalidRequest(
            f"input {name}: {values.size} values do not fill shape "
            f"{shown(list(request_input.shape))}"
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
                f"input {shown(inputs[0].name)} has shape {list(matrix.shape)}; send one [rows, "
                f"{len(schema.features)}] tensor in feature order {list(schema.features)}, "
                "or one tensor per feature named by it"
            )
        schema.check_rows(matrix.shape[0])
    else:
        names = [i.name for i in inputs]
        if len(set(names)) != len(names):
            raise InvalidRequest(
                f"duplicate inputs: {shown_list(sorted({n for n in names if names.count(n) > 1}))}"
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


class _BinaryInput(RequestInput):
    data: list[Any] | None = None  # absent: the bytes follow the header


class _BinaryHeader(InferenceRequest):
    """The JSON header of a binary request: a v2 request whose inputs may have no `data`."""

    inputs: list[_BinaryInput]


def _header_length(sent: str | None, body_length: int) -> int:
    if sent is None:
        raise InvalidRequest(f"a binary request needs the {HEADER_LENGTH} header")
    if not _BYTE_COUNT.fullmatch(sent.strip()):
        raise InvalidRequest(f"{HEADER_LENGTH} must be a number of bytes")
    length = int(sent)
    if not 0 < length <= body_length:
        raise InvalidRequest(
            f"{HEADER_LENGTH} is {length}; the JSON header it measures must be from 1 byte "
            f"to the whole body ({body_length} bytes)"
        )
    return length


def _binary_size(spec: _BinaryInput) -> int | None:
    """The input's `binary_data_size`: None when its data is in the JSON."""
    size = (spec.parameters or {}).get("binary_data_size")
    if size is None:
        if spec.data is None:
            raise InvalidRequest(f"input {shown(spec.name)} has neither data nor binary_data_size")
        return None
    if spec.data is not None:
        raise InvalidRequest(f"input {shown(spec.name)} has both data and binary_data_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidRequest(
            f"input {shown(spec.name)}: binary_data_size must be a number of bytes"
        )
    return size


def _binary_tensor(spec: _BinaryInput, size: int, chunk: bytes) -> InferInput:
    datatype = spec.datatype.upper()
    if datatype not in BINARY_DTYPES:
        raise InvalidRequest(
            f"input {shown(spec.name)} has datatype {shown(spec.datatype)}; expected one of "
            f"{', '.join(NUMERIC_DATATYPES)}"
        )
    name, shape = shown(spec.name), shown(spec.shape)
    if any(d < 0 for d in spec.shape):
        raise InvalidRequest(f"input {name}: shape {shape} has a negative dimension")
    dtype = np.dtype(BINARY_DTYPES[datatype])
    needed = math.prod(spec.shape) * dtype.itemsize
    if size != needed:
        raise InvalidRequest(
            f"input {name}: binary_data_size is {size} bytes; shape {shape} of "
            f"{datatype} takes {needed}"
        )
    try:
        values = np.frombuffer(chunk, dtype=dtype).reshape(spec.shape)
    except (ValueError, OverflowError) as exc:
        raise InvalidRequest(f"input {name}: shape {shape} is not usable") from exc
    tensor = InferInput(spec.name, list(spec.shape), datatype, parameters=spec.parameters)
    tensor.set_data_from_numpy(values.astype(dtype.newbyteorder("=")), binary_data=True)
    return tensor


def decode_v2_binary(body: bytes, header_length: str | None, *, model_name: str) -> InferRequest:
    """A v2 binary request: `header_length` bytes of JSON header (the value of the
    Inference-Header-Content-Length header), then the bytes of each input that has a
    `binary_data_size` parameter, in order, and nothing else. Every length is checked
    against the body and each input's shape and datatype; `InvalidRequest` says which does
    not fit."""
    length = _header_length(header_length, len(body))
    try:
        header = _BinaryHeader.model_validate_json(body[:length])
    except pydantic.ValidationError as exc:
        raise InvalidRequest(
            f"the JSON header of the binary request: {describe_validation_errors(exc.errors())}"
        ) from exc
    inputs, offset = [], length
    for spec in header.inputs:
        size = _binary_size(spec)
        if size is None:
            inputs.append(
                InferInput(spec.name, spec.shape, spec.datatype, spec.data, spec.parameters)
            )
            continue
        if offset + size > len(body):
            raise InvalidRequest(
                f"input {shown(spec.name)}: binary_data_size is {size} bytes but only "
                f"{len(body) - offset} are left in the body"
            )
        inputs.append(_binary_tensor(spec, size, body[offset : offset + size]))
        offset += size
    if offset != len(body):
        raise InvalidRequest(
            f"the body has {len(body) - offset} bytes after its binary tensors (the header "
            "length and binary_data_size parameters must add up to it)"
        )
    outputs = [RequestedOutput(o.name, o.parameters) for o in header.outputs or []]
    return InferRequest(
        model_name=model_name,
        infer_inputs=inputs,
        request_id=header.id,
        parameters=header.parameters,
        request_outputs=outputs or None,
    )


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
    log_odds: np.ndarray,
    intercept: float,
    contributions: np.ndarray,
) -> dict[str, Any]:
    """Per row: each feature's contribution to the log-odds of default (zero at the training
    mean), largest adverse (most positive) first: the reason codes."""
    explanations = []
    for row, p, eta, terms in zip(matrix, prob, log_odds, contributions, strict=True):
        order = np.argsort(-terms, kind="stable")
        explanations.append(
            {
                "model_version": version,
                "prob_default": float(p),
                "log_odds": float(eta),
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
