"""When R fails inside predict for one request: that request gets a 500 `{"error":
"internal error", "request_id": ...}` through every route of the sidecar, never R's
message, KServe's `Type : message` or a traceback; the predictor's log has the details
under the same request id; the next requests are served."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from agi_credit.store import ModelStore
from tests.auth.echo import bearer
from tests.conftest import train_quietly
from tests.servers import (
    Server,
    Sidecar,
    prod_env,
    running_server,
    running_sidecar,
    triton_grpc,
)

# A real R model whose predict fails inside R for AMT_CREDIT == 13: the offset is 0
# otherwise, and not a feature (term labels exclude offsets).
FAILING_GLM_R = """
suppressPackageStartupMessages(library(data.table))
d <- fread(Sys.getenv("DATA_PATH"), select = c("TARGET", "AMT_CREDIT", "DAYS_BIRTH"))
fit <- glm(TARGET ~ AMT_CREDIT + DAYS_BIRTH +
             offset(if (any(AMT_CREDIT == 13)) stop("boom: an R detail") else 0 * AMT_CREDIT),
           data = d, family = binomial())
out <- Sys.getenv("MODEL_OUTPUT_PATH")
saveRDS(fit, file.path(out, "model_v1.rds"))
jsonlite::write_json(list(features = c("AMT_CREDIT", "DAYS_BIRTH")),
                     file.path(out, "model_metadata.json"))
"""
FAILS = {"AMT_CREDIT": 13.0, "DAYS_BIRTH": -12000.0}
WORKS = {"AMT_CREDIT": 14.0, "DAYS_BIRTH": -12000.0}
LEAKS = ("boom", "RError", "Traceback", "R predict failed", " : ")


@pytest.fixture(scope="module")
def failing_predictor(
    small_csv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("failing")
    script = root / "failing_glm.R"
    script.write_text(FAILING_GLM_R)
    store = ModelStore(root / "store")
    result = train_quietly(store, small_csv, train_script=script, min_auc=0.0, auc_tolerance=1.0)
    assert result.promoted
    with running_server(["--store", str(store.root)], root / "predictor.log") as server:
        yield server


@pytest.fixture(scope="module")
def front(
    failing_predictor: Server, users_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sidecar]:
    log = tmp_path_factory.mktemp("front") / "sidecar.log"
    env = prod_env(users_file)
    with running_sidecar(failing_predictor, log, env=env) as sidecar:
        yield sidecar


def v2_body(row: dict[str, float]) -> dict[str, object]:
    return {
        "inputs": [
            {"name": name, "shape": [1], "datatype": "FP64", "data": [value]}
            for name, value in row.items()
        ]
    }


Row = dict[str, float]
ROUTES: dict[str, tuple[str, Callable[[Row], object]]] = {
    "origin /predict": ("/predict", lambda row: row),
    "origin batch": ("/predict", lambda row: [WORKS, row]),
    "v2 infer": ("/v2/models/agi-credit/infer", v2_body),
    "v1 predict": ("/v1/models/agi-credit:predict", lambda row: {"instances": [row]}),
}


@pytest.mark.parametrize(("path", "body"), ROUTES.values(), ids=ROUTES.keys())
def test_an_r_failure_is_a_500_with_a_request_id_and_nothing_of_r(
    front: Sidecar, failing_predictor: Server, path: str, body: Callable[[Row], object]
) -> None:
    headers = bearer(front.url)
    failed = httpx.post(f"{front.url}{path}", json=body(FAILS), headers=headers)
    assert failed.status_code == 500
    request_id = failed.headers["x-request-id"]
    assert failed.json() == {"error": "internal error", "request_id": request_id}
    assert not any(leak in failed.text for leak in LEAKS), failed.text

    logged = [
        line for line in failing_predictor.log_path.read_text().splitlines() if request_id in line
    ]
    assert any("boom: an R detail" in line for line in logged), "no detail in the log"

    served = httpx.post(f"{front.url}{path}", json=body(WORKS), headers=headers)
    assert served.status_code == 200, served.text


def test_over_grpc_an_r_failure_is_internal_with_a_request_id_and_nothing_of_r(
    front: Sidecar, failing_predictor: Server
) -> None:
    auth = bearer(front.url)["Authorization"]
    failed, served = triton_grpc(
        front.grpc_target,
        [
            {"method": "infer", "authorization": auth, "rows": [FAILS]},
            {"method": "infer", "authorization": auth, "rows": [WORKS]},
        ],
    )
    assert failed["status"] == "StatusCode.INTERNAL"
    message = failed["message"]
    assert message.startswith("internal error (request id ")
    assert not any(leak in message for leak in LEAKS), message
    request_id = message.removeprefix("internal error (request id ").rstrip(")")
    assert request_id in failing_predictor.log_path.read_text()
    assert served["ok"] and len(served["result"]) == 1
