"""What KServe v0.20.0 makes of the chart's InferenceService (emulated from its source by
tests/chart/kserve_v0_20.py): a Deployment and a Service the API server accepts, with the
predictor first, the sidecar behind the Service, and the store mounted read-only. The chart
of a272625 passed KServe's CRD model but not this: its pod had two kserve-containers."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import kserve_v0_20 as kserve
from tests.chart.chart import (
    ALL_VALUES,
    CHART,
    KUBERNETES_VERSIONS,
    NAMESPACE,
    case_name,
    env_of,
    load_values,
    merged,
    rendered_case,
    validate_inference_service,
)

KSERVE_CASES = [case_name(p) for p in ALL_VALUES if load_values(p).get("mode") == "kserve"]
OLD_CHART = Path(__file__).parent / "fixtures" / "kserve-isvc-a272625.yaml"


def by_name(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod["containers"]}


def mount_at(container: dict[str, Any], path: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        m for m in container.get("volumeMounts", []) if m["mountPath"] == path
    ]
    assert len(found) == 1, found
    return found[0]


# --- the chart's renders ------------------------------------------------------------------


def test_the_repo_has_kserve_renders() -> None:
    assert {"kserve", "kserve-scaling"} <= set(KSERVE_CASES)


@pytest.mark.parametrize("case", KSERVE_CASES)
def test_kserve_makes_a_deployment_the_api_server_accepts(case: str) -> None:
    rendered = rendered_case(case)
    isvc = rendered.one("InferenceService")
    emulated = kserve.emulate(isvc, namespace=NAMESPACE)
    kserve.validate(emulated)  # strict schemas of KUBERNETES_VERSIONS + the API server's rules

    deployment = emulated.deployment
    assert deployment["metadata"]["name"] == f"{isvc['metadata']['name']}-predictor"
    pod = deployment["spec"]["template"]["spec"]
    names = [c["name"] for c in pod["containers"]]
    assert len(names) == len(set(names)), names
    assert names[:2] == ["kserve-container", "transformer-container"]

    values = merged(load_values(CHART / "values.yaml"), rendered.values)
    predictor, sidecar = pod["containers"][0], pod["containers"][1]
    assert predictor["image"].startswith(values["image"]["predictor"]["repository"] + ":")
    assert predictor["args"] == ["serve"]
    assert sidecar["image"].startswith(values["image"]["auth"]["repository"] + ":")
    for container in pod["containers"]:
        assert env_of(container)["INFERENCE_SERVICE_NAME"] == isvc["metadata"]["name"]
    # The chart's explicit CPU limit, not KServe's default of 1 CPU for containers[0].
    assert (
        predictor["resources"]["limits"]["cpu"] == values["predictor"]["resources"]["limits"]["cpu"]
    )


@pytest.mark.parametrize("case", KSERVE_CASES)
def test_kserve_mounts_the_store_read_only_where_the_predictor_reads_it(case: str) -> None:
    rendered = rendered_case(case)
    emulated = kserve.emulate(rendered.one("InferenceService"), namespace=NAMESPACE)
    pod = emulated.deployment["spec"]["template"]["spec"]
    predictor = by_name(pod)["kserve-container"]
    mount = mount_at(predictor, "/mnt/models")
    values = merged(load_values(CHART / "values.yaml"), rendered.values)
    assert mount["readOnly"] is True
    assert mount.get("subPath", "") == values["persistence"]["subPath"].strip("/")
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = values["persistence"].get("existingClaim") or rendered.one("PersistentVolumeClaim")
    claim_name = claim if isinstance(claim, str) else claim["metadata"]["name"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim_name
    env = env_of(predictor)
    assert env["STORAGE_URI"] == env["MODEL_STORE"] == "/mnt/models"


@pytest.mark.parametrize("case", KSERVE_CASES)
def test_kserves_service_leads_port_80_to_the_sidecar_and_exposes_grpc(case: str) -> None:
    rendered = rendered_case(case)
    emulated = kserve.emulate(rendered.one("InferenceService"), namespace=NAMESPACE)
    sidecar = by_name(emulated.deployment["spec"]["template"]["spec"])["transformer-container"]
    container_ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    ports = {p["port"]: p for p in emulated.service["spec"]["ports"]}
    assert ports[80]["targetPort"] == container_ports["http"]
    grpc = ports[container_ports["grpc"]]
    assert grpc["targetPort"] == container_ports["grpc"]
    assert grpc["appProtocol"] == "kubernetes.io/h2c"
    selector = emulated.service["spec"]["selector"]
    assert selector.items() <= emulated.deployment["spec"]["template"]["metadata"]["labels"].items()


def test_replicas_are_min_replicas_without_kserves_autoscaler_and_left_to_its_hpa_with() -> None:
    fixed = kserve.emulate(rendered_case("kserve").one("InferenceService"), namespace=NAMESPACE)
    assert fixed.deployment["spec"]["replicas"] == 1
    scaled = rendered_case("kserve-scaling").one("InferenceService")
    assert "replicas" not in kserve.emulate(scaled, namespace=NAMESPACE).deployment["spec"]


# --- the chart of a272625 -----------------------------------------------------------------


def test_the_chart_of_a272625_passed_the_crd_model_but_kserve_makes_two_kserve_containers() -> None:
    (old,) = list(yaml.safe_load_all(OLD_CHART.read_text()))
    assert [c["name"] for c in old["spec"]["predictor"]["containers"]] == [
        "auth",
        "kserve-container",
    ]
    validate_inference_service(old, KUBERNETES_VERSIONS[-1])  # what the chart tests checked
    emulated = kserve.emulate(old, namespace=NAMESPACE)
    with pytest.raises(kserve.Invalid) as refused:
        kserve.validate(emulated)
    print(f"\nthe API server would say: {refused.value}")
    assert str(refused.value) == (
        'Deployment.apps "credit-agi-credit-predictor" is invalid: '
        'spec.template.spec.containers[1].name: Duplicate value: "kserve-container"'
    )


# --- rule by rule, on small InferenceServices -----------------------------------------------


def isvc(
    *containers: dict[str, Any], annotations: dict[str, str] | None = None, **predictor: Any
) -> dict[str, Any]:
    """A minimal InferenceService in RawDeployment mode."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "demo",
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"}
            | (annotations or {}),
        },
        "spec": {"predictor": {"containers": list(containers), **predictor}},
    }


def container(name: str | None, *ports: tuple[str, int], **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"image": f"{name or 'anon'}:1", **fields}
    if name is not None:
        out["name"] = name
    if ports:
        out["ports"] = [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports]
    return out


STORE = {"env": [{"name": "STORAGE_URI", "value": "pvc://models/store/v1"}]}
PREDICTOR = container("kserve-container", **copy.deepcopy(STORE))
SIDECAR = container("transformer-container", ("http", 8000), ("grpc", 8001))


def pod_of(obj: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = kserve.emulate(obj, namespace="ns").deployment["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("mode", ["RawDeployment", "Standard"])
def test_raw_deployment_is_defaulted_to_standard(mode: str) -> None:
    obj = isvc(PREDICTOR, annotations={"serving.kserve.io/deploymentMode": mode})
    deployment = kserve.emulate(obj, namespace="ns").deployment
    assert deployment["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    kserve.validate(kserve.emulate(obj, namespace="ns"))


@pytest.mark.parametrize("mode", ["Serverless", "Knative", "ModelMesh", None])
def test_other_modes_are_refused_not_approximated(mode: str | None) -> None:
    obj = isvc(PREDICTOR)
    if mode is None:
        del obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    else:
        obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = mode
    with pytest.raises(kserve.Unsupported, match="Knative" if mode != "ModelMesh" else mode):
        kserve.emulate(obj, namespace="ns")


def test_the_predictor_container_is_written_over_containers_0_unchanged() -> None:
    pod = pod_of(isvc(container("kserve-container", args=["serve"]), SIDECAR))
    assert [c["name"] for c in pod["containers"]] == ["kserve-container", "transformer-container"]
    assert pod["containers"][0]["image"] == "kserve-container:1"
    assert pod["containers"][0]["args"] == ["serve"]


def test_a_lone_container_is_named_kserve_container_whatever_its_name() -> None:
    assert [c["name"] for c in pod_of(isvc(container("model")))["containers"]] == [
        "kserve-container"
    ]
    assert [c["name"] for c in pod_of(isvc(container(None), SIDECAR))["containers"]] == [
        "kserve-container",
        "transformer-container",
    ]


def test_several_named_containers_without_kserve_container_are_rejected() -> None:
    with pytest.raises(kserve.Rejected, match="no container named kserve-container"):
        kserve.emulate(isvc(container("model"), SIDECAR), namespace="ns")


def test_a_predictor_first_in_the_wrong_place_gives_two_kserve_containers() -> None:
    emulated = kserve.emulate(isvc(SIDECAR | {"name": "auth"}, PREDICTOR), namespace="ns")
    assert [c["name"] for c in emulated.deployment["spec"]["template"]["spec"]["containers"]] == [
        "kserve-container",
        "kserve-container",
    ]
    with pytest.raises(
        kserve.Invalid, match=r'containers\[1\]\.name: Duplicate value: "kserve-container"'
    ):
        kserve.validate(emulated)


def test_every_container_gets_inference_service_name_overwriting_a_value() -> None:
    stale = container(
        "transformer-container", env=[{"name": "INFERENCE_SERVICE_NAME", "value": "x"}]
    )
    for c in pod_of(isvc(PREDICTOR, stale))["containers"]:
        assert [e for e in c["env"] if e["name"] == "INFERENCE_SERVICE_NAME"] == [
            {"name": "INFERENCE_SERVICE_NAME", "value": "demo"}
        ]


@pytest.mark.parametrize(
    ("where", "value", "read_only"),
    [
        (None, None, True),
        ("isvc", "false", False),
        ("predictor", "false", False),
        ("isvc", "False", True),
    ],
)
def test_the_claim_is_mounted_read_only_unless_the_annotation_says_false(
    where: str | None, value: str, read_only: bool
) -> None:
    annotation = {"storage.kserve.io/readonly": value}
    obj = isvc(PREDICTOR, annotations=annotation if where == "isvc" else None)
    if where == "predictor":
        obj["spec"]["predictor"]["annotations"] = annotation
    predictor = pod_of(obj)["containers"][0]
    assert mount_at(predictor, "/mnt/models") == {
        "name": "kserve-pvc-source",
        "mountPath": "/mnt/models",
        "subPath": "store/v1",
        "readOnly": read_only,
    }


def test_the_pvc_uri_becomes_a_volume_and_storage_uri_the_mount_path() -> None:
    pod = pod_of(isvc(PREDICTOR, SIDECAR))
    assert pod["volumes"] == [
        {"name": "kserve-pvc-source", "persistentVolumeClaim": {"claimName": "models"}}
    ]
    predictor, sidecar = pod["containers"]
    assert env_of(predictor)["STORAGE_URI"] == "/mnt/models"
    # KServe mounts the claim into the transformer-container too (mountContainerNames).
    assert mount_at(sidecar, "/mnt/models")["readOnly"] is True
    assert "STORAGE_URI" not in env_of(sidecar)


def test_a_claim_without_a_path_is_mounted_whole() -> None:
    whole = container("kserve-container", env=[{"name": "STORAGE_URI", "value": "pvc://models"}])
    assert "subPath" not in mount_at(pod_of(isvc(whole))["containers"][0], "/mnt/models")


def test_other_storage_uris_are_refused_and_so_is_storage_uri_in_the_sidecar() -> None:
    s3 = container("kserve-container", env=[{"name": "STORAGE_URI", "value": "s3://b/m"}])
    with pytest.raises(kserve.Unsupported, match="s3://"):
        kserve.emulate(isvc(s3), namespace="ns")
    with pytest.raises(kserve.Rejected, match="transformer container"):
        kserve.emulate(isvc(PREDICTOR, SIDECAR | STORE), namespace="ns")


def test_the_default_readiness_probe_goes_only_where_there_is_none() -> None:
    probe = {"httpGet": {"path": "/ready", "port": "http"}}
    pod = pod_of(
        isvc(
            container("kserve-container"),
            container("transformer-container", ("http", 8000), readinessProbe=probe),
            container("relay", ("metrics", 9090)),
        )
    )
    predictor, sidecar, relay = pod["containers"]
    assert predictor["readinessProbe"] == {
        "tcpSocket": {"port": 8080},  # no ports: 8080
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert sidecar["readinessProbe"] == probe
    assert "readinessProbe" not in relay  # neither kserve- nor transformer-container
    with_port = pod_of(isvc(container("kserve-container", ("h", 9000))))["containers"][0]
    assert with_port["readinessProbe"]["tcpSocket"] == {"port": 9000}


def test_default_resources_fill_only_what_containers_0_lacks() -> None:
    given = {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}
    pod = pod_of(isvc(container("kserve-container", resources=given), container("other")))
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "250m", "memory": "2Gi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert "resources" not in pod["containers"][1]


def test_a_request_above_kserves_default_limit_is_refused_by_the_api_server() -> None:
    big = container("kserve-container", resources={"requests": {"cpu": "2", "memory": "1Gi"}})
    with pytest.raises(kserve.Invalid, match="must be less than or equal to cpu limit of 1"):
        kserve.validate(kserve.emulate(isvc(big), namespace="ns"))


def test_the_service_uses_the_transformer_container_wherever_it_is() -> None:
    service = kserve.emulate(
        isvc(container("kserve-container", ("p", 8080)), SIDECAR), namespace="ns"
    ).service
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8000, "protocol": "TCP"},
        {
            "name": "grpc",
            "port": 8001,
            "targetPort": 8001,
            "protocol": "TCP",
            "appProtocol": "kubernetes.io/h2c",
        },
    ]
    assert service["metadata"]["name"] == "demo-predictor"
    assert service["spec"]["selector"] == {"app": "isvc.demo-predictor"}


def test_without_a_transformer_the_service_uses_containers_0() -> None:
    first = container("kserve-container", ("h2c-port", 9000))
    service = kserve.emulate(isvc(first, container("relay", ("m", 9090))), namespace="ns").service
    assert service["spec"]["ports"] == [
        {
            "name": "h2c-port",
            "port": 80,
            "targetPort": 9000,
            "protocol": "TCP",
            "appProtocol": "kubernetes.io/h2c",
        }
    ]


def test_a_container_without_ports_gives_port_80_to_8080_named_after_the_component() -> None:
    service = kserve.emulate(isvc(PREDICTOR), namespace="ns").service
    assert service["spec"]["ports"] == [
        {"name": "demo-predictor", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    ]
    kserve.validate_service(service)


def test_a_second_unnamed_port_makes_a_service_the_api_server_refuses() -> None:
    sidecar = container("transformer-container", ("http", 8000))
    sidecar["ports"].append({"containerPort": 8001})
    service = kserve.emulate(isvc(PREDICTOR, sidecar), namespace="ns").service
    assert service["spec"]["ports"][1] == {"port": 8001, "targetPort": 8001, "protocol": "TCP"}
    with pytest.raises(kserve.Invalid, match=r"spec.ports\[1\].name: Required value"):
        kserve.validate_service(service)


def test_labels_and_annotations_of_the_deployment_and_its_pods() -> None:
    obj = isvc(PREDICTOR, labels={"team": "risk"}, annotations={"kubectl.kubernetes.io/x": "y"})
    obj["metadata"]["labels"] = {"team": "isvc", "tier": "ml"}
    deployment = kserve.emulate(obj, namespace="ns").deployment
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels == {
        "team": "risk",  # the predictor's labels win over the InferenceService's
        "tier": "ml",
        "serving.kserve.io/inferenceservice": "demo",
        "component": "predictor",
        "app": "isvc.demo-predictor",
    }
    assert deployment["metadata"]["labels"] == labels
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "isvc.demo-predictor"}}
    pod_annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert pod_annotations["internal.serving.kserve.io/storage-initializer-sourceuri"] == (
        "pvc://models/store/v1"
    )
    assert pod_annotations["kubectl.kubernetes.io/x"] == "y"


@pytest.mark.parametrize(("autoscaler", "replicas"), [("none", 3), ("hpa", None), (None, None)])
def test_replicas_come_from_min_replicas_only_with_autoscaler_class_none(
    autoscaler: str | None, replicas: int | None
) -> None:
    annotations = {"serving.kserve.io/autoscalerClass": autoscaler} if autoscaler else None
    obj = isvc(PREDICTOR, annotations=annotations, minReplicas=3, maxReplicas=3)
    assert kserve.emulate(obj, namespace="ns").deployment["spec"].get("replicas") == replicas


def test_what_is_not_modelled_is_refused() -> None:
    for obj in (
        isvc(PREDICTOR, logger={"mode": "all"}),
        isvc(model={"modelFormat": {"name": "sklearn"}}),
        isvc(PREDICTOR) | {"spec": {"predictor": {"containers": [PREDICTOR]}, "transformer": {}}},
    ):
        with pytest.raises(kserve.Unsupported):
            kserve.emulate(obj, namespace="ns")
