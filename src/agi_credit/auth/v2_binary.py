"""/predict's applicants to the predictor and its scores back, with the v2 binary tensor
extension: a JSON header, then each feature's doubles as raw little-endian bytes; the
outputs come back the same way (`binary_data_output`). At the size limit that is 20 MB each
way instead of some 26 MB of JSON numbers, which both sides would parse into Python floats.
An answer with its outputs in JSON is read too."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

HEADER_LENGTH = "inference-header-content-length"
"""The length of the JSON header before the binary data, in requests and answers."""

_TYPECODES = {"FP64": "d", "FP32": "f", "INT64": "q", "INT32": "i"}
_SWAP = sys.byteorder != "little"


class MalformedAnswer(ValueError):
    """The predictor's answer is not the v2 response it should be."""


@dataclass(frozen=True)
class Scores:
    prob: Sequence[float]
    labels: Sequence[int]
    version: str


def encode_request(
    columns: Mapping[str, array[float]], *, request_id: str
) -> tuple[bytes, dict[str, str]]:
    """A v2 infer request of one FP64 tensor per feature (named by it), asking for binary
    outputs: the body and its headers."""
    rows = len(next(iter(columns.values())))
    header = {
        "id": request_id,
        "inputs": [
            {
                "name": name,
                "shape": [rows],
                "datatype": "FP64",
                "parameters": {"binary_data_size": column.itemsize * rows},
            }
            for name, column in columns.items()
        ],
        "parameters": {"binary_data_output": True},
    }
    head = orjson.dumps(header)
    body = b"".join([head, *(_little_endian(column) for column in columns.values())])
    return body, {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(head)),
    }


def decode_response(body: bytes, header_length: str | None) -> Scores:
    """`prob_default`, `prediction` and the version that scored them, from a v2 answer whose
    outputs are binary (after a JSON header of `header_length` bytes) or in its JSON."""
    try:
        end = len(body) if header_length is None else int(header_length)
        payload: dict[str, Any] = orjson.loads(memoryview(body)[:end])
        outputs: dict[str, Sequence[Any]] = {}
        for output in payload["outputs"]:
            size = (output.get("parameters") or {}).get("binary_data_size")
            if size is None:
                outputs[output["name"]] = output["data"]
                continue
            values = array(_TYPECODES[output["datatype"]])
            values.frombytes(memoryview(body)[end : end + size])
            if _SWAP:
                values.byteswap()
            outputs[output["name"]] = values
            end += size
        return Scores(
            outputs["prob_default"], outputs["prediction"], payload["parameters"]["model_version"]
        )
    except (KeyError, TypeError, ValueError) as exc:  # orjson's errors are ValueErrors
        raise MalformedAnswer("the predictor's answer is not a v2 response") from exc


def _little_endian(column: array[float]) -> memoryview | array[float]:
    if not _SWAP:
        return memoryview(column)
    swapped = array(column.typecode, column)
    swapped.byteswap()
    return swapped
