"""The release in a real cluster (kind in CI, `make kind-e2e`), seen through the Kubernetes
API: what tests/e2e cannot see from the sidecar's port. Skipped, with the reason, when no
cluster answers."""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import Stack
from tests.e2e.kind.cluster import PREDICTOR, Cluster, name_of


def test_the_first_training_job_completed(cluster: Cluster) -> None:
    jobs = cluster.training_jobs()
    assert jobs, "no training Job in the namespace"
    assert any(job.status and job.status.succeeded for job in jobs), [name_of(j) for j in jobs]


def test_the_predictor_pods_are_ready_and_never_restarted(cluster: Cluster) -> None:
    for name in cluster.wait_ready_pods(PREDICTOR, timeout=60):
        pod = cluster.core.read_namespaced_pod(name, cluster.namespace)
        assert pod.spec is not None and pod.status is not None
        containers = [c.name for c in pod.spec.containers]
        # the predictor first (kserve-container in KServe mode), then the JWT sidecar
        # (transformer-container in KServe mode): KServe's collocation layout
        sidecars = {"auth", "transformer-container"}
        assert len(containers) >= 2 and sidecars & set(containers[1:2]), containers
        for status in pod.status.container_statuses or []:
            assert status.ready and status.restart_count == 0, (name, status.name)
        assert pod.spec.security_context and pod.spec.security_context.run_as_non_root is True
        for container in pod.spec.containers:
            context = container.security_context
            assert context and context.read_only_root_filesystem is True, container.name


def test_every_service_reaches_only_the_sidecar_ports(cluster: Cluster) -> None:
    services = cluster.core.list_namespaced_service(cluster.namespace).items
    assert services
    for service in services:
        assert service.spec is not None
        for port in service.spec.ports or []:
            sidecar = (8000, 8001, "http", "grpc")  # REST and v2 gRPC, both behind the JWT
            assert port.target_port in sidecar, (name_of(service), port)


def test_a_job_created_from_the_cronjob_retrains_and_is_served(
    cluster: Cluster, stack: Stack, headers: dict[str, str]
) -> None:
    """`kubectl create job --from=cronjob/<release>-retrain`, as the README says."""

    def current() -> str:
        response = httpx.get(f"{stack.url}/model-info", headers=headers)
        assert response.status_code == 200, response.text
        return str(response.json()["current_version"])

    before = current()
    name = f"retrain-e2e-{int(time.time())}"
    cluster.create_job_from_cronjob(name)
    cluster.wait_job(name, timeout=900)
    deadline = time.monotonic() + 60
    while (now := current()) == before:
        assert time.monotonic() < deadline, f"still serving {now} after {name}"
        time.sleep(0.5)
    assert now != before
