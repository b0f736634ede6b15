"""KServe's data plane with our reader of v2 binary requests (`codec.decode_v2_binary`):
KServe's own answers a 500 to a header length or a `binary_data_size` that does not fit the
body. JSON requests and everything else stay KServe's."""

from __future__ import annotations

from typing import Any

from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferRequest

from agi_credit.predictor.codec import HEADER_LENGTH, decode_v2_binary


class CheckedDataPlane(DataPlane):
    def decode_inference_request(
        self, body: Any, headers: dict[str, str], model_name: str
    ) -> InferRequest:
        """A v2 REST request body (KServe's `InferenceRequest`, or bytes when the request
        uses the binary tensor extension) as an `InferRequest`."""
        if isinstance(body, bytes):
            return decode_v2_binary(body, headers.get(HEADER_LENGTH), model_name=model_name)
        return super().decode_inference_request(body, headers, model_name)
