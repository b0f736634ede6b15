"""tritonclient.grpc, run in a process of its own by the tests that need it.

Its protobuf module and kserve's (which other tests import) both register the
`inference.*` messages, and one process cannot hold both. So the tests write the calls as
JSON on this module's stdin and read the results, one per call, on its stdout:

    python -m tests.auth.triton_grpc 127.0.0.1:8001 <<< '[{"method": "infer",
        "authorization": "Bearer ...", "rows": [{"AMT_CREDIT": 1.0, ...}]}]'

Each result is {"ok": true, "result": ...} or {"ok": false, "status": "StatusCode.X",
"message": "..."}.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

MODEL = "agi-credit"


def _inputs(rows: list[dict[str, float]]) -> list[triton.InferInput]:
    tensors = []
    for name in rows[0]:
        tensor = triton.InferInput(name, [len(rows)], "FP64")
        tensor.set_data_from_numpy(np.array([float(row[name]) for row in rows]))
        tensors.append(tensor)
    return tensors


def _call(client: triton.InferenceServerClient, call: dict[str, Any]) -> dict[str, Any]:
    auth = call.get("authorization")
    headers = {"authorization": auth} if auth is not None else None
    methods: dict[str, Callable[[], Any]] = {
        "live": lambda: client.is_server_live(headers=headers),
        "ready": lambda: client.is_server_ready(headers=headers),
        "model_ready": lambda: client.is_model_ready(MODEL, headers=headers),
        "metadata": lambda: client.get_model_metadata(MODEL, headers=headers, as_json=True),
        "infer": lambda: (
            client.infer(MODEL, _inputs(call["rows"]), headers=headers)
            .as_numpy("prob_default")
            .tolist()
        ),
        "repository_index": lambda: client.get_model_repository_index(headers=headers),
        "unload": lambda: client.unload_model(MODEL, headers=headers),
        "load": lambda: client.load_model(MODEL, headers=headers),
    }
    try:
        result = methods[call["method"]]()
    except InferenceServerException as exc:
        return {"ok": False, "status": str(exc.status()), "message": str(exc.message())}
    return {"ok": True, "result": result if not hasattr(result, "ListFields") else None}


def main() -> None:
    client = triton.InferenceServerClient(sys.argv[1])
    try:
        results = [_call(client, call) for call in json.load(sys.stdin)]
    finally:
        client.close()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
