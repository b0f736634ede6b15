"""Versions: hot reload without failed requests, broken versions isolated, one-file mode."""

from __future__ import annotations

import ipaddress
import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil

from agi_credit._files import sha256_of
from agi_credit.store import ModelStore
from tests.bodies import APPLICANT, v1_body, v2_body
from tests.conftest import r_predictions, train_quietly
from tests.servers import Server, json_records, running_server


@dataclass
class Traffic:
    """Clients sending single-row v1 requests until stopped; every response recorded."""

    url: str
    clients: int = 4
    responses: list[tuple[float, int, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(
                        f"{self.url}/v1/models/agi-credit:predict", json=v1_body()
                    )
                    version = (
                        response.json()["predictions"][0]["model_version"]
                        if response.status_code == 200
                        else None
                    )
                    self.responses.append((time.monotonic(), response.status_code, version))
                except httpx.TransportError:
                    self.responses.append((time.monotonic(), 0, None))

    def __enter__(self) -> Traffic:
        self._threads = [threading.Thread(target=self._run) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def first_seen(self, version: str, after: float) -> float | None:
        return min((t for t, _, v in self.responses if v == version and t >= after), default=None)

    def wait_for(self, version: str, after: float, timeout: float = 10) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (seen := self.first_seen(version, after)) is not None:
                return seen
            time.sleep(0.02)
        return None


def test_promote_while_clients_send_switches_within_2s_without_failures(
    store_copy: ModelStore, tmp_path: Path
) -> None:
    with (
        running_server(["--store", str(store_copy.root)], tmp_path / "log") as server,
        Traffic(server.url) as traffic,
    ):
        time.sleep(1.0)
        promoted_at = time.monotonic()
        store_copy.promote("v1", actor="pytest")
        switched = traffic.wait_for("v1", promoted_at)
        time.sleep(0.5)
    assert switched is not None and switched - promoted_at <= 2.0
    statuses = [status for _, status, _ in traffic.responses]
    assert len(statuses) > 100 and set(statuses) == {200}
    # Once switched, nothing goes back to the old version.
    later = [v for t, _, v in traffic.responses if t > switched + 0.2]
    assert later and set(later) == {"v1"}


def test_a_new_training_is_served_without_a_restart(
    store_copy: ModelStore, small_csv: Path, tmp_path: Path
) -> None:
    with (
        running_server(["--store", str(store_copy.root)], tmp_path / "log") as server,
        Traffic(server.url, clients=2) as traffic,
    ):
        result = train_quietly(store_copy, small_csv, min_auc=0.0, auc_tolerance=1.0)
        registered_at = time.monotonic()
        assert result.entry.version == "v4"
        switched = traffic.wait_for("v4", registered_at - 1)
        metadata = httpx.get(f"{server.url}/v2/models/agi-credit").json()
    # A new version is read in R and checked against R in a child process first: seconds,
    # not the instant swap of a promotion.
    assert switched is not None and switched - registered_at <= 10.0
    assert {s for _, s, _ in traffic.responses} == {200}
    assert metadata["versions"] == ["v1", "v2", "v3", "v4"]


def test_a_corrupt_version_is_reported_and_the_others_still_served(
    store_copy: ModelStore, tmp_path: Path
) -> None:
    corrupt = store_copy.artifact_path("v1")
    corrupt.chmod(0o644)
    corrupt.write_bytes(b"\x1f\x8b not an R object")
    with running_server(["--store", str(store_copy.root)], tmp_path / "log") as server:
        metadata = httpx.get(f"{server.url}/v2/models/agi-credit").json()
        pinned = httpx.post(f"{server.url}/v1/models/agi-credit:predict", json=v1_body())
        broken = httpx.post(
            f"{server.url}/v2/models/agi-credit/versions/v1/infer",
            json=v2_body(),
        )
        logs = server.logs()
    assert metadata["versions"] == ["v2", "v3"]
    status = metadata["parameters"]["model_versions"]["v1"]
    assert status["status"] == "unavailable"
    assert "does not match its sha256" in status["error"]
    assert pinned.status_code == 200
    assert pinned.json()["predictions"][0]["model_version"] == "v2"
    assert broken.status_code == 404
    assert "version v1 is not served: model_v1.rds does not match its sha256" in broken.text
    assert any(record.get("event") == "version_unavailable" for record in json_records(logs))


def test_an_unreadable_rds_with_a_matching_digest_and_a_missing_file(
    store_copy: ModelStore, tmp_path: Path
) -> None:
    unreadable = store_copy.artifact_path("v1")
    unreadable.chmod(0o644)
    unreadable.write_bytes(b"\x1f\x8b not an R object")
    metadata = json.loads(store_copy.metadata_path.read_text())
    metadata["models"][0]["artifact"]["sha256"] = sha256_of(unreadable)
    store_copy.metadata_path.write_text(json.dumps(metadata))
    store_copy.artifact_path("v3").unlink()
    with running_server(["--store", str(store_copy.root)], tmp_path / "log") as server:
        versions = httpx.get(f"{server.url}/v2/models/agi-credit").json()["parameters"][
            "model_versions"
        ]
    assert "R cannot read model_v1.rds" in versions["v1"]["error"]
    assert versions["v3"]["error"] == "model file model_v3.rds is missing"
    assert versions["v2"]["status"] == "serving"


def test_a_broken_current_version_is_explained_and_pinned_versions_work(
    store_copy: ModelStore, tmp_path: Path
) -> None:
    store_copy.artifact_path("v2").chmod(0o644)
    store_copy.artifact_path("v2").write_bytes(b"garbage")
    with running_server(["--store", str(store_copy.root)], tmp_path / "log") as server:
        current = httpx.post(f"{server.url}/v1/models/agi-credit:predict", json=v1_body())
        metadata = httpx.get(f"{server.url}/v2/models/agi-credit").json()
        pinned = httpx.post(
            f"{server.url}/v2/models/agi-credit/versions/v1/infer",
            json=v2_body(),
        )
    assert current.status_code == 404
    assert "the current version v2 is not served" in current.json()["error"]
    assert metadata["parameters"]["store_current_version"] == "v2"
    assert metadata["parameters"]["current_version"] is None
    assert pinned.status_code == 200


def test_model_path_serves_one_rds(serving_store: ModelStore, tmp_path: Path) -> None:
    rds = tmp_path / "model.rds"
    shutil.copyfile(serving_store.artifact_path("v1"), rds)
    with running_server(["--model-path", str(rds)], tmp_path / "log") as server:
        metadata = httpx.get(f"{server.url}/v2/models/agi-credit").json()
        response = httpx.post(f"{server.url}/v1/models/agi-credit:predict", json=v1_body())
    assert metadata["versions"] == ["v1"]
    assert metadata["parameters"]["model_versions"]["v1"]["engine"] == "compiled"
    want = r_predictions(
        rds,
        {k: [v] for k, v in APPLICANT.items()},
        "predict(m$fit, bake(m$recipe, new_data = nd), type = 'response')",
    )
    got = response.json()["predictions"][0]["prob_default"]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_model_path_serves_a_plain_glm_through_r(serving_store: ModelStore, tmp_path: Path) -> None:
    rds = tmp_path / "plain.rds"
    shutil.copyfile(serving_store.artifact_path("v3"), rds)
    rows = {"AMT_CREDIT": [2e5, 1e6], "DAYS_BIRTH": [-9000.0, -21000.0]}
    with running_server(["--model-path", str(rds)], tmp_path / "log") as server:
        metadata = httpx.get(f"{server.url}/v2/models/agi-credit").json()
        explain = httpx.post(
            f"{server.url}/v1/models/agi-credit:explain",
            json=v1_body([{"AMT_CREDIT": 2e5, "DAYS_BIRTH": -9000.0}]),
        )
        response = httpx.post(
            f"{server.url}/v1/models/agi-credit:predict",
            json={"instances": [[c, d] for c, d in zip(*rows.values(), strict=True)]},
        )
    assert explain.status_code == 501
    assert "reason codes are defined for recipe + glm models" in explain.json()["error"]
    info = metadata["parameters"]["model_versions"]["v1"]
    assert info["engine"] == "r" and info["features"] == ["AMT_CREDIT", "DAYS_BIRTH"]
    want = r_predictions(rds, rows, "predict(m, newdata = nd, type = 'response')")
    got = [p["prob_default"] for p in response.json()["predictions"]]
    np.testing.assert_allclose(got, want, atol=1e-12)


def wait_for_status(url: str, status: int, timeout: float = 15.0) -> httpx.Response:
    """GET `url` until it answers `status`; the last answer."""
    deadline = time.monotonic() + timeout
    while (response := httpx.get(url)).status_code != status:
        assert time.monotonic() < deadline, f"{url}: {response.status_code} {response.text}"
        time.sleep(0.1)
    return response


def test_the_predictor_starts_before_the_first_version_and_becomes_ready_when_it_lands(
    tmp_path: Path, small_csv: Path
) -> None:
    store = ModelStore(tmp_path / "store")  # nothing there yet: the training job runs
    with running_server(
        ["--store", str(store.root)], tmp_path / "log", wait_for="/v2/health/live"
    ) as server:
        ready = httpx.get(f"{server.url}/v2/health/ready")
        model_ready = httpx.get(f"{server.url}/v2/models/agi-credit/ready")
        metadata = httpx.get(f"{server.url}/v2/models/agi-credit")
        predict = httpx.post(f"{server.url}/v1/models/agi-credit:predict", json=v1_body())
        train_quietly(store, small_csv, min_auc=0.0)
        became_ready = wait_for_status(f"{server.url}/v2/health/ready", 200)
        served = httpx.post(f"{server.url}/v1/models/agi-credit:predict", json=v1_body())
    assert ready.status_code == 503
    assert ready.json()["error"] == "no version can be served: the store has no model versions yet"
    assert model_ready.status_code == 503
    assert metadata.status_code == 200 and metadata.json()["versions"] == []
    assert predict.status_code == 503, predict.text  # KServe: the model is not ready
    assert became_ready.json() == {"ready": True}
    assert served.status_code == 200 and served.json()["predictions"][0]["model_version"] == "v1"


def test_a_store_of_broken_versions_keeps_the_predictor_up_and_not_ready_saying_why(
    store_copy: ModelStore, small_csv: Path, tmp_path: Path
) -> None:
    for version in ("v1", "v2", "v3"):
        artifact = store_copy.artifact_path(version)
        artifact.chmod(0o644)
        artifact.write_bytes(b"not an R object")
    with running_server(
        ["--store", str(store_copy.root)], tmp_path / "log", wait_for="/v2/health/live"
    ) as server:
        ready = httpx.get(f"{server.url}/v2/health/ready")
        versions = httpx.get(f"{server.url}/v2/models/agi-credit").json()["parameters"]
        train_quietly(store_copy, small_csv, min_auc=0.0, auc_tolerance=1.0)
        wait_for_status(f"{server.url}/v2/health/ready", 200)
    assert ready.status_code == 503
    assert "model_v2.rds does not match its sha256" in ready.json()["error"]
    assert {v["status"] for v in versions["model_versions"].values()} == {"unavailable"}


def test_the_predictor_listens_on_loopback_only(server: Server) -> None:
    """Both the HTTP and the gRPC server: KServe alone would bind 0.0.0.0 and [::]."""
    listening = [
        c.laddr
        for c in psutil.Process(server.process.pid).connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert {port for _, port in listening} == {server.http_port, server.grpc_port}
    assert all(is_loopback(ip) for ip, _ in listening), listening


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4 loopback mapped into IPv6 (gRPC binds it so)."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def test_an_unloaded_model_makes_the_predictor_not_ready(
    serving_store: ModelStore, tmp_path: Path
) -> None:
    """KServe's repository API can unload the model; readiness must then say so, or nothing
    restarts a pod that cannot score."""
    with running_server(["--store", str(serving_store.root)], tmp_path / "log") as server:
        unloaded = httpx.post(f"{server.url}/v2/repository/models/agi-credit/unload")
        assert unloaded.status_code == 200, unloaded.text
        ready = httpx.get(f"{server.url}/v2/health/ready")
        model_ready = httpx.get(f"{server.url}/v2/models/agi-credit/ready")
    assert ready.status_code == 503
    assert ready.json() == {"ready": False, "error": "model agi-credit is not loaded"}
    assert model_ready.status_code != 200


def test_versions_whose_files_vanish_stay_served_from_memory_and_say_so(
    store_copy: ModelStore, tmp_path: Path
) -> None:
    """A predictor that has loaded a version never drops it for a damaged store: it serves
    on, stays ready, and reports the damage (a new predictor would not be ready)."""
    with running_server(["--store", str(store_copy.root)], tmp_path / "log") as server:
        for version in ("v1", "v2", "v3"):
            store_copy.artifact_path(version).unlink()
        store_copy.promote("v1", actor="pytest")
        deadline = time.monotonic() + 10
        while (info := httpx.get(f"{server.url}/v2/models/agi-credit").json())["parameters"][
            "current_version"
        ] != "v1":
            assert time.monotonic() < deadline, "the promotion was not followed"
            time.sleep(0.1)
        ready = httpx.get(f"{server.url}/v2/health/ready")
        scored = httpx.post(f"{server.url}/v1/models/agi-credit:predict", json=v1_body())
    assert ready.status_code == 200
    assert scored.json()["predictions"][0]["model_version"] == "v1"
    problems = {v: i["store_problem"] for v, i in info["parameters"]["model_versions"].items()}
    assert problems == {
        v: f"model file model_{v}.rds is missing; serving the copy loaded before"
        for v in ("v1", "v2", "v3")
    }
