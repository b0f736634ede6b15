"""v2 gRPC behind the same JWT: tritonclient.grpc through the sidecar's gRPC port works with
a token in the `authorization` metadata and is refused without one (UNAUTHENTICATED), the
request bytes pass unchanged, and only the inference service's client methods get
through."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from tests.bodies import APPLICANT, FEATURES
from tests.servers import Sidecar

MODEL = "agi-credit"


@pytest.fixture
def client(sidecar: Sidecar) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(sidecar.grpc_target)
    yield client
    client.close()


def inputs(rows: list[dict[str, float]]) -> list[triton.InferInput]:
    tensors = []
    for name in FEATURES:
        tensor = triton.InferInput(name, [len(rows)], "FP64")
        tensor.set_data_from_numpy(np.array([float(row[name]) for row in rows]))
        tensors.append(tensor)
    return tensors


def status_of(error: InferenceServerException) -> str:
    return str(error.status())


def test_infer_metadata_and_ready_work_with_a_token(
    sidecar: Sidecar, client: triton.InferenceServerClient
) -> None:
    auth = {"authorization": f"Bearer {sidecar.token()}"}
    assert client.is_server_live(headers=auth) and client.is_server_ready(headers=auth)
    assert client.is_model_ready(MODEL, headers=auth)
    metadata = client.get_model_metadata(MODEL, headers=auth, as_json=True)
    assert [i["name"] for i in metadata["inputs"]] == FEATURES
    result = client.infer(MODEL, inputs([APPLICANT, APPLICANT]), headers=auth)
    prob = result.as_numpy("prob_default")
    assert prob.shape == (2,) and 0 < prob[0] < 1 and prob[0] == prob[1]


def test_the_same_answer_as_rest_through_the_sidecar(
    sidecar: Sidecar, client: triton.InferenceServerClient
) -> None:
    import httpx

    headers = sidecar.headers()
    rest = httpx.post(f"{sidecar.url}/predict", json=APPLICANT, headers=headers).json()
    auth = {"authorization": headers["Authorization"]}
    grpc_prob = client.infer(MODEL, inputs([APPLICANT]), headers=auth).as_numpy("prob_default")
    assert grpc_prob[0] == rest["prob_default"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Basic YWRtaW46MTIzNDU2", "Bearer "],
    ids=["none", "garbage", "basic", "empty"],
)
def test_every_method_is_refused_without_a_valid_token(
    client: triton.InferenceServerClient, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization is not None else None
    calls = {
        "live": lambda: client.is_server_live(headers=headers),
        "ready": lambda: client.is_model_ready(MODEL, headers=headers),
        "metadata": lambda: client.get_model_metadata(MODEL, headers=headers),
        "infer": lambda: client.infer(MODEL, inputs([APPLICANT]), headers=headers),
    }
    for name, call in calls.items():
        with pytest.raises(InferenceServerException) as refused:
            call()
        assert status_of(refused.value) == "StatusCode.UNAUTHENTICATED", name


def test_repository_control_never_reaches_the_predictor(
    sidecar: Sidecar, client: triton.InferenceServerClient
) -> None:
    auth = {"authorization": f"Bearer {sidecar.token()}"}
    for call in (
        lambda: client.get_model_repository_index(headers=auth),
        lambda: client.unload_model(MODEL, headers=auth),
        lambda: client.load_model(MODEL, headers=auth),
    ):
        with pytest.raises(InferenceServerException) as refused:
            call()
        assert status_of(refused.value) == "StatusCode.UNIMPLEMENTED"
    assert client.is_model_ready(MODEL, headers=auth)  # still loaded


def test_bad_input_keeps_the_predictors_own_message(
    sidecar: Sidecar, client: triton.InferenceServerClient
) -> None:
    auth = {"authorization": f"Bearer {sidecar.token()}"}
    short = inputs([APPLICANT])[:-1]  # a feature missing
    with pytest.raises(InferenceServerException) as refused:
        client.infer(MODEL, short, headers=auth)
    assert status_of(refused.value) == "StatusCode.INVALID_ARGUMENT"
    assert "missing" in str(refused.value.message())


def test_the_predictor_grpc_port_is_not_the_sidecars(sidecar: Sidecar) -> None:
    """The forwarder is a separate port; nothing answers gRPC on the sidecar's HTTP port."""
    channel = grpc.insecure_channel(sidecar.grpc_target)
    grpc.channel_ready_future(channel).result(timeout=10)
    channel.close()
    assert sidecar.grpc_port != sidecar.predictor.grpc_port
