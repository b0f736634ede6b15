"""k8s/: the chart's deployment as plain manifests for kustomize, a base plus a kind overlay.

Built with the real kustomize (scripts/ensure-k8s-tools.sh puts Debian's in .venv/bin) and
validated like the chart: Kubernetes' schemas, strictly, and the same security properties
on every pod. The base is generated from the chart, so it must be what the generator
writes today."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chart import (
    KUBERNETES_VERSIONS,
    REPO,
    all_containers,
    assert_containers_are_read_only_unprivileged_and_without_capabilities,
    assert_no_token_or_host_namespaces,
    assert_runs_as_non_root_10001_with_seccomp,
    assert_writes_only_to_an_emptydir_tmp_and_its_volumes,
    env_of,
    pod_specs,
    pods_of,
    validate_kubernetes,
)
from tests.k8s.scripts import script

K8S = REPO / "k8s"
KUSTOMIZATIONS = {"base": K8S / "base", "kind": K8S / "overlays" / "kind"}


def kustomize_binary() -> str:
    search = f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    found = shutil.which("kustomize", path=search)
    assert found, "kustomize is missing: scripts/ensure-k8s-tools.sh kustomize (make test runs it)"
    return found


@functools.cache
def build(directory: Path) -> list[dict[str, Any]]:
    """`kustomize build DIRECTORY`, as objects."""
    done = subprocess.run(
        [kustomize_binary(), "build", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


@pytest.fixture(scope="module", params=sorted(KUSTOMIZATIONS))
def built(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, build(KUSTOMIZATIONS[request.param])


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def containers_by_name(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    pod = next(pod_specs(one(objects, kind)))
    return {c["name"]: c for c in all_containers(pod)}


# --- the base is the chart's ------------------------------------------------------------


def test_the_base_is_what_make_k8s_writes_from_the_chart() -> None:
    render_k8s = script("render_k8s")
    assert render_k8s.differences(render_k8s.render_base(), render_k8s.BASE) == []


def test_a_stale_base_is_named_by_the_check(tmp_path: Path) -> None:
    render_k8s = script("render_k8s")
    stale = tmp_path / "base"
    shutil.copytree(render_k8s.BASE, stale)
    (stale / "service.yaml").write_text("# edited by hand\n", encoding="utf-8")
    (stale / "extra.yaml").write_text("kind: ConfigMap\n", encoding="utf-8")
    assert render_k8s.differences(render_k8s.render_base(), stale) == [
        "extra.yaml (not generated)",
        "service.yaml",
    ]


def test_the_base_carries_no_trace_of_helm() -> None:
    base = build(KUSTOMIZATIONS["base"])
    text = yaml.safe_dump_all(base)
    assert "helm.sh" not in text and "checksum/" not in text and "Helm" not in text
    for obj in base:
        assert "namespace" not in obj["metadata"], obj["kind"]  # set by an overlay
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize"
    assert {o["metadata"]["name"] for o in base if o["kind"] == "Job"} == {"agi-credit-train"}


# --- valid and secure, base and overlay ---------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_strictly(
    built: tuple[str, list[dict[str, Any]]], version: str
) -> None:
    _, objects = built
    assert len(objects) >= 8
    for obj in objects:
        validate_kubernetes(obj, version)


def test_every_pod_is_locked_down(built: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = built
    pods = pods_of(objects)
    assert {where.split("/")[0] for where, _ in pods} == {"Deployment", "Job", "CronJob"}
    for where, pod in pods:
        assert_runs_as_non_root_10001_with_seccomp(where, pod)
        assert_containers_are_read_only_unprivileged_and_without_capabilities(where, pod)
        assert_writes_only_to_an_emptydir_tmp_and_its_volumes(where, pod)
        assert_no_token_or_host_namespaces(where, pod, "agi-credit")


def test_the_sidecar_is_the_only_door(built: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = built
    containers = containers_by_name(objects, "Deployment")
    assert list(containers) == ["predictor", "auth"]  # KServe's order, in both modes
    assert containers["auth"]["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8001, "protocol": "TCP"},
    ]
    assert env_of(containers["predictor"])["PREDICTOR_HOST"] == "127.0.0.1"
    assert "ports" not in containers["predictor"]
    service = one(objects, "Service")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 8000, "http"),
        ("grpc", 8001, "grpc"),
    ]
    policies = {p["metadata"]["name"]: p["spec"] for p in objects if p["kind"] == "NetworkPolicy"}
    predictor = policies["agi-credit-predictor"]
    assert [p["port"] for rule in predictor["ingress"] for p in rule["ports"]] == [8000, 8001]
    assert {p["port"] for rule in predictor["egress"] for p in rule["ports"]} == {53}
    assert policies["agi-credit-training"]["ingress"] == []


# --- base: prod; kind: dev, small, in its own namespace ------------------------------------


def test_the_base_is_prod_and_takes_its_secret_from_the_cluster() -> None:
    base = build(KUSTOMIZATIONS["base"])
    assert not [o for o in base if o["kind"] == "Secret"]
    assert "123456" not in yaml.safe_dump_all(base)
    for _, pod in pods_of(base):
        for container in all_containers(pod):
            assert env_of(container)["ENV"] == "prod"
    auth = containers_by_name(base, "Deployment")["auth"]
    assert env_of(auth)["JWT_SECRET"] == {
        "secretKeyRef": {"name": "agi-credit-auth", "key": "JWT_SECRET"}
    }
    assert env_of(auth)["USERS_FILE"] == "/etc/agi-credit/users.yaml"
    cronjob = one(base, "CronJob")
    assert cronjob["spec"]["suspend"] is True  # on-demand retraining only


def test_the_kind_overlay_is_a_dev_install_without_secrets_in_its_namespace() -> None:
    kind = build(KUSTOMIZATIONS["kind"])
    namespace = one(kind, "Namespace")
    assert namespace["metadata"]["name"] == "agi-credit"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in kind:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "agi-credit", obj["kind"]
    containers = containers_by_name(kind, "Deployment")
    for name in ("auth", "predictor"):
        assert env_of(containers[name])["ENV"] == "dev"
    assert "JWT_SECRET" not in env_of(containers["auth"])
    assert "USERS_FILE" not in env_of(containers["auth"])
    assert "secret" not in yaml.safe_dump(one(kind, "Deployment")).lower()


def test_the_kind_overlay_trains_on_20000_rows_in_the_job_and_the_cronjob() -> None:
    kind = build(KUSTOMIZATIONS["kind"])
    for kind_name in ("Job", "CronJob"):
        train = containers_by_name(kind, kind_name)["train"]
        args = train["args"]
        assert args[args.index("--rows") + 1] == "20000", kind_name


def test_kind_e2e_pins_the_overlay_to_the_images_it_loaded(tmp_path: Path) -> None:
    kind_e2e = script("kind_e2e")
    pinned = kind_e2e.pinned_overlay("20261126-abc1234", tmp_path / "kind-e2e")
    images = {
        c["name"]: c["image"] for _, pod in pods_of(build(pinned)) for c in all_containers(pod)
    }
    assert images == {
        "auth": "agi-credit-auth:20261126-abc1234",
        "predictor": "agi-credit-predictor:20261126-abc1234",
        "train": "agi-credit-training:20261126-abc1234",
    }
