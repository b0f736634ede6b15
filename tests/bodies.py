"""Inference request bodies, built one way for every test: the same applicants as v1
instances, v2 JSON tensors, or the origin's feature objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
