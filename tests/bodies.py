"""Inference request bodies, built one way for every test: the same applicants as v1
instances, v2 JSON tensors, or the origin's feature objects."""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

FEATURES = ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE"]
APPLICANT: dict[str, float] = {
    "AMT_INCOME_TOTAL": 5000.0,
    "AMT_CREDIT": 200000.0,
    "DAYS_BIRTH": -12000.0,
    "AMT_GOODS_PRICE": 180000.0,
}

Row = Mapping[str, Any]


def tensor(
    name: str, data: Sequence[Any], *, datatype: str = "FP64", shape: list[int] | None = None
) -> dict[str, Any]:
    """One v2 input tensor, 1-D unless `shape` says otherwise."""
    return {
        "name": name,
        "shape": shape if shape is not None else [len(data)],
        "datatype": datatype,
        "data": list(data),
    }


def v2_body(rows: Sequence[Row] = (APPLICANT,), *, datatype: str = "FP64") -> dict[str, Any]:
    """`{"inputs": [...]}`: one tensor per feature, named by it, in the rows' key order."""
    names = list(rows[0]) if rows else list(FEATURES)
    return {"inputs": [tensor(n, [row[n] for row in rows], datatype=datatype) for n in names]}


def v1_body(rows: Sequence[Row] = (APPLICANT,)) -> dict[str, Any]:
    """`{"instances": [{feature: value}, ...]}`."""
    return {"instances": [dict(row) for row in rows]}


def v1_lists(rows: Sequence[Row] = (APPLICANT,)) -> dict[str, Any]:
    """`{"instances": [[value, ...], ...]}` in feature order."""
    return {"instances": [[row[f] for f in FEATURES] for row in rows]}


def v2_columns(columns: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """`{"inputs": [...]}` from one list of values per feature."""
    return {"inputs": [tensor(name, values) for name, values in columns.items()]}


def v2_with(**replacements: dict[str, Any] | None) -> dict[str, Any]:
    """The applicant as v2 tensors, with a feature's tensor replaced (None drops it)."""
    inputs = {t["name"]: t for t in v2_body()["inputs"]}
    for name, replacement in replacements.items():
        if replacement is None:
            inputs.pop(name)
        else:
            inputs[name] = replacement
    return {"inputs": list(inputs.values())}


def v2_binary(row: Row) -> tuple[bytes, dict[str, str]]:
    """One row as a v2 binary-tensor request (where NaN and inf can be sent): the body and
    its headers."""
    header = {
        "inputs": [
            {"name": f, "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 8}}
            for f in row
        ]
    }
    head = json.dumps(header).encode()
    body = head + b"".join(struct.pack("<d", float(v)) for v in row.values())
    return body, {
        "inference-header-content-length": str(len(head)),
        "content-type": "application/octet-stream",
    }


def all_but_the_last_byte(
    body: bytes, sent: threading.Event, go: threading.Event, timeout: float = 120
) -> Iterator[bytes]:
    """`body` in pieces of 1 MiB; before its last byte, `sent` is set and `go` awaited: a
    client that holds its request open."""
    for start in range(0, len(body) - 1, 1 << 20):
        yield body[start : min(start + (1 << 20), len(body) - 1)]
    sent.set()
    assert go.wait(timeout)
    yield body[-1:]
