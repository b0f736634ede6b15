"""The codecs turn v1 instances and v2 tensors into one validated matrix."""

from __future__ import annotations

import numpy as np
import pytest
from kserve.protocol.infer_type import InferInput, InferRequest

from agi_credit.predictor.codec import decode_v1, decode_v2, encode_v1
from agi_credit.predictor.errors import InvalidRequest
from agi_credit.predictor.schema import FeatureSchema

SCHEMA = FeatureSchema(features=("A", "B"), nullable=frozenset({"B"}), max_rows=3)


def request(**columns: list[float]) -> InferRequest:
    inputs = []
    for name, values in columns.items():
        tensor = InferInput(name, [len(values)], "FP64")
        tensor.set_data_from_numpy(np.array(values, dtype=np.float64))
        inputs.append(tensor)
    return InferRequest(model_name="m", infer_inputs=inputs)


def test_v2_columns_are_put_in_feature_order() -> None:
    matrix = decode_v2(request(B=[3.0, 4.0], A=[1.0, 2.0]), SCHEMA)
    np.testing.assert_array_equal(matrix, [[1.0, 3.0], [2.0, 4.0]])


def test_v1_objects_and_lists_decode_alike() -> None:
    objects = decode_v1({"instances": [{"B": None, "A": 1}]}, SCHEMA)
    lists = decode_v1({"instances": [[1, None]]}, SCHEMA)
    np.testing.assert_array_equal(objects, lists)
    assert np.isnan(objects[0, 1]) and objects.dtype == np.float64


def test_null_is_refused_for_a_feature_the_model_cannot_impute() -> None:
    with pytest.raises(InvalidRequest, match="missing value for A in instance 0"):
        decode_v1({"instances": [{"A": None, "B": 1}]}, SCHEMA)


def test_batches_over_the_limit_are_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"batch of 4 rows exceeds the limit of 3"):
        decode_v2(request(A=[1.0] * 4, B=[1.0] * 4), SCHEMA)
    with pytest.raises(InvalidRequest, match="exceeds the limit"):
        decode_v1({"instances": [[1, 2]] * 4}, SCHEMA)


def test_error_messages_never_carry_the_values() -> None:
    with pytest.raises(InvalidRequest) as failure:
        decode_v1({"instances": [{"A": "secret-income-123", "B": 1}]}, SCHEMA)
    assert "secret-income-123" not in str(failure.value)


def test_v1_responses_carry_version_and_threshold() -> None:
    encoded = encode_v1(version="v7", prob=np.array([0.2, 0.7]), threshold=0.5)
    assert encoded == {
        "predictions": [
            {"prob_default": 0.2, "prediction": 0, "model_version": "v7"},
            {"prob_default": 0.7, "prediction": 1, "model_version": "v7"},
        ]
    }
