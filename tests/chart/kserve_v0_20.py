"""What KServe v0.20.0 makes of the chart's InferenceService in Standard (RawDeployment)
mode: the Deployment and the Service `<isvc>-predictor`, as the API server would get them.

No Kubernetes control plane runs here (docs: DESIGN.md), and KServe's CRD model accepts an
InferenceService whose pod the API server then refuses (the chart of a272625: two containers
named kserve-container). So this replays, rule by rule, what KServe's webhooks and controller
do with a custom predictor (`spec.predictor.containers[]`), and validates the result as the
API server would. Every rule cites its source at tag v0.20.0 (commit 1fb781055dd1); paths are
relative to github.com/kserve/kserve. What the emulation does not model is refused
(`Unsupported`), never approximated; what KServe's admission webhook refuses raises
`Rejected`; what the API server would refuse raises `Invalid`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import kubernetes.client.models as k8s_models
from kubernetes.utils.quantity import parse_quantity

from tests.chart.chart import KUBERNETES_VERSIONS, validate_kubernetes

Obj = dict[str, Any]

# pkg/constants/constants.go
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
ISVC_LABEL = "serving.kserve.io/inferenceservice"  # InferenceServicePodLabelKey
READONLY = "storage.kserve.io/readonly"  # StorageReadonlyAnnotationKey
SOURCE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"
PREDICTOR = "kserve-container"  # InferenceServiceContainerName
TRANSFORMER = "transformer-container"  # TransformerContainerName
MODEL_DIR = "/mnt/models"  # DefaultModelLocalMountPath
PVC_VOLUME = "kserve-pvc-source"  # PvcSourceMountName
# ServiceAnnotationDisallowedList (knative's min-scale/max-scale keys spelled out).
DISALLOWED_ANNOTATIONS = {
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/max-scale",
    SOURCE_URI,
    "kubectl.kubernetes.io/last-applied-configuration",
    "modelFormat",
}
# charts/kserve-resources/values.yaml, kserve.inferenceservice.resources, which
# files/common/configmap-patch.yaml writes to inferenceservice-config's `inferenceService`.
DEFAULT_RESOURCES = {
    "requests": {"cpu": "1", "memory": "2Gi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}
# The same values.yaml, kserve.metricsaggregator: both "false".
METRICS_ANNOTATIONS = (
    "serving.kserve.io/enable-metric-aggregation",
    "serving.kserve.io/enable-prometheus-scraping",
)

# The predictor's fields that are not PodSpec fields and that this emulation handles (the
# others are refused): pkg/apis/serving/v1beta1/component.go, ComponentExtensionSpec, and
# PredictorSpec.Name (predictor.go).
_EXTENSION_FIELDS = {
    "minReplicas", "maxReplicas", "scaleMetric", "scaleMetricType", "scaleTarget", "labels",
    "annotations", "containerConcurrency", "timeout", "canaryTrafficPercent",
    "deploymentStrategy", "autoScaling", "name",
}  # fmt: skip
_POD_FIELDS = set(k8s_models.V1PodSpec.attribute_map.values())


class Unsupported(ValueError):
    """The InferenceService uses something this emulation does not model."""


class Rejected(ValueError):
    """KServe's InferenceService admission webhooks (or its controller) would refuse it."""


class Invalid(ValueError):
    """The Kubernetes API server would refuse the object."""


@dataclass(frozen=True)
class Emulated:
    """The Deployment (its pod template as KServe's pod webhook admits the pods) and the
    Service KServe's controller creates for the predictor."""

    deployment: Obj
    service: Obj


def emulate(isvc: Obj, *, namespace: str) -> Emulated:
    """The Deployment and Service KServe v0.20.0 makes of `isvc` (as rendered) in `namespace`."""
    isvc = copy.deepcopy(isvc)
    meta = isvc.setdefault("metadata", {})
    if meta.setdefault("namespace", namespace) != namespace:
        raise Unsupported(f"the InferenceService is for namespace {meta['namespace']}")
    _check_supported(isvc)
    _default(isvc)
    _admit(isvc)
    pod, component_meta = _build_predictor_resources(isvc)
    deployment = _create_raw_default_deployment(component_meta, isvc["spec"]["predictor"], pod)
    # reconcilers/raw/raw_kube_reconciler.go, NewRawKubeReconciler: the workload reconciler
    # is built first, so the Service sees the labels and pod spec the Deployment's set.
    service = _create_default_svc(component_meta, pod)
    _mutate_pod(deployment["spec"]["template"])
    return Emulated(deployment=deployment, service=service)


def _check_supported(isvc: Obj) -> None:
    spec = isvc.get("spec", {})
    if others := sorted(set(spec) - {"predictor"}):
        raise Unsupported(f"spec.{others[0]}: only a predictor is modelled")
    predictor = spec.get("predictor", {})
    if others := sorted(set(predictor) - _POD_FIELDS - _EXTENSION_FIELDS):
        # model/framework runtimes, storageUris, workerSpec, logger, batcher...
        raise Unsupported(f"spec.predictor.{others[0]}: only a custom predictor is modelled")


def _default(isvc: Obj) -> None:
    """The mutating webhook: the deployment mode, and CustomPredictor.Default."""
    annotations = isvc["metadata"].setdefault("annotations", {})
    # pkg/apis/serving/v1beta1/inference_service_defaults.go, DefaultInferenceService:
    # "Normalize deprecated annotation values": RawDeployment -> Standard, Serverless -> Knative.
    given = annotations.get(DEPLOYMENT_MODE)
    if given is None:
        # pkg/controller/v1beta1/inferenceservice/utils/utils.go, GetDeploymentMode: else the
        # ConfigMap's deploy.defaultDeploymentMode, "Knative" in charts/kserve-resources.
        raise Unsupported(f"no {DEPLOYMENT_MODE} annotation: KServe's default mode is Knative")
    mode = {"RawDeployment": "Standard", "Serverless": "Knative"}.get(given, given)
    if mode != "Standard":
        raise Unsupported(
            f"{DEPLOYMENT_MODE}: {given} ({mode}): only Standard (RawDeployment) is modelled"
        )
    annotations[DEPLOYMENT_MODE] = mode
    containers = isvc["spec"].get("predictor", {}).get("containers")
    if not containers:
        # predictor.go, GetImplementations: no container, no implementation.
        raise Rejected("exactly one implementation: the predictor has no containers")
    # pkg/apis/serving/v1beta1/predictor_custom.go, CustomPredictor.Default: a lone or
    # unnamed first container is named kserve-container; the ConfigMap's default resources
    # go to containers[0], whatever its name, only where a value is missing.
    if len(containers) == 1 or not containers[0].get("name"):
        containers[0]["name"] = PREDICTOR
    resources = containers[0].setdefault("resources", {})
    for kind, defaults in DEFAULT_RESOURCES.items():
        resources[kind] = {**defaults, **(resources.get(kind) or {})}
    # inference_service_defaults.go, disableAutomountServiceAccountToken: not applied, as
    # charts/kserve-resources sets security.autoMountServiceAccountToken: true.


def _admit(isvc: Obj) -> None:
    """The validating webhook: pkg/apis/serving/v1beta1/inference_service_validation.go,
    validateInferenceService (the rules a custom predictor can break)."""
    name, annotations = isvc["metadata"]["name"], isvc["metadata"]["annotations"]
    containers = isvc["spec"]["predictor"]["containers"]
    # validateInferenceServiceName: IsvcRegexp.
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name):
        raise Rejected(f"the InferenceService name {name!r} is not a DNS-1035 label")
    # validateInferenceServiceAutoscaler: AutoscalerAllowedClassList.
    if annotations.get(AUTOSCALER_CLASS, "hpa") not in ("hpa", "external", "keda", "none"):
        raise Rejected(f"[{annotations[AUTOSCALER_CLASS]}] is not a supported autoscaler class")
    for container in [*isvc["spec"]["predictor"].get("initContainers", []), *containers]:
        for env in container.get("env", []):
            # validateBlockedEnvVars: pkg/validation/env_policy.go, DefaultBlockedEnvVars.
            if env["name"] == "PYTHONPATH":
                raise Rejected(f"setting PYTHONPATH in container {container.get('name')!r}")
            # validateCollocationStorageURI (its first transformer-container only).
            if container.get("name") == TRANSFORMER and env["name"] == "STORAGE_URI":
                raise Rejected("storage uri should not be specified in transformer container")
    # validateExactlyOneImplementation: pkg/apis/serving/v1beta1/predictor.go,
    # GetImplementations makes one CustomPredictor per container named kserve-container.
    named = [c for c in containers if c.get("name") == PREDICTOR]
    if len(named) > 1:
        raise Rejected("exactly one kserve-container: the predictor has several")
    if not named:
        # predictor_custom.go, GetContainer returns nil: the controller would dereference it.
        raise Rejected("no container named kserve-container (and containers[0] is named)")
    # pkg/controller/v1beta1/inferenceservice/utils/utils.go, IsMMSPredictor: model agent.
    if {"name": "MULTI_MODEL_SERVER", "value": "true"} in containers[0].get("env", []):
        raise Unsupported("MULTI_MODEL_SERVER=true (the model agent) is not modelled")


def _storage_uri(predictor: Obj) -> str | None:
    """predictor_custom.go, CustomPredictor.GetStorageUri: STORAGE_URI of the first
    kserve-container."""
    container = next(c for c in predictor["containers"] if c.get("name") == PREDICTOR)
    return next(
        (e.get("value", "") for e in container.get("env", []) if e["name"] == "STORAGE_URI"), None
    )


def _build_predictor_resources(isvc: Obj) -> tuple[Obj, Obj]:
    """pkg/controller/v1beta1/inferenceservice/components/predictor.go,
    buildPredictorResources: the pod spec and the ObjectMeta of the Deployment and Service."""
    name, predictor = isvc["metadata"]["name"], isvc["spec"]["predictor"]

    def allowed(annotations: dict[str, str]) -> dict[str, str]:  # utils.Filter(...Disallowed)
        return {k: v for k, v in annotations.items() if k not in DISALLOWED_ANNOTATIONS}

    annotations = allowed(isvc["metadata"].get("annotations") or {})
    if (uri := _storage_uri(predictor)) is not None:
        # addStorageInitializerAnnotations: the pod webhook acts on this annotation.
        annotations[SOURCE_URI] = uri
    # predictor.go, buildPredictorResources (called by Reconcile): `podSpec =
    # corev1.PodSpec(isvc.Spec.Predictor.PodSpec)` (the pod fields only), then
    # `podSpec.Containers[0] = *predContainer`, where GetContainer (predictor_custom.go)
    # returns the first kserve-container of the spec unchanged: nothing merged, a copy.
    pod = copy.deepcopy({k: v for k, v in predictor.items() if k in _POD_FIELDS})
    pod["containers"][0] = copy.deepcopy(
        next(c for c in predictor["containers"] if c.get("name") == PREDICTOR)
    )
    # "Add InferenceService name as environment variable to all containers":
    # utils.AddEnvVarToPodSpec sets `value` (overwrites an existing variable's value).
    for container in pod["containers"]:
        env = container.setdefault("env", [])
        found = next((e for e in env if e["name"] == "INFERENCE_SERVICE_NAME"), None)
        if found is None:
            env.append({"name": "INFERENCE_SERVICE_NAME", "value": name})
        else:
            found["value"] = name
    # buildObjectMeta: name from constants.PredictorServiceName; labels and annotations,
    # "predictor component > isvc" (utils.Union: later maps win).
    suffix = f"-{predictor['name']}-predictor" if predictor.get("name") else "-predictor"
    component_meta = {
        "name": name + suffix,
        "namespace": isvc["metadata"]["namespace"],
        "labels": {
            **(isvc["metadata"].get("labels") or {}),
            **(predictor.get("labels") or {}),
            ISVC_LABEL: name,
            "component": "predictor",  # constants.KServiceComponentLabel
        },
        "annotations": {**annotations, **allowed(predictor.get("annotations") or {})},
    }
    return pod, component_meta


def _create_raw_default_deployment(component_meta: Obj, predictor: Obj, pod: Obj) -> Obj:
    """pkg/controller/v1beta1/inferenceservice/reconcilers/deployment/
    deployment_reconciler.go, createRawDefaultDeployment."""
    app = f"isvc.{component_meta['name']}"  # constants.GetRawServiceLabel
    # `podMetadata := componentMeta` shares the Labels map: the Deployment (and the Service,
    # built after it) carry `app` too.
    component_meta["labels"]["app"] = app
    _set_default_pod_spec(pod)
    spec: Obj = {"selector": {"matchLabels": {"app": app}}}
    if "deploymentStrategy" in predictor:  # "User-specified deployment strategy takes precedence"
        spec["strategy"] = copy.deepcopy(predictor["deploymentStrategy"])
    else:
        # setDefaultDeploymentSpec; applyRolloutStrategyFromConfigmap applies only when the
        # ConfigMap's default mode is Standard (Knative in charts/kserve-resources).
        spec["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
        }
        spec |= {"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}
    # Replicas from minReplicas only with autoscalerClass none (else the HPA owns them).
    if "minReplicas" in predictor and component_meta["annotations"].get(AUTOSCALER_CLASS) == "none":
        spec["replicas"] = predictor["minReplicas"]
    spec["template"] = {"metadata": copy.deepcopy(component_meta), "spec": pod}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": copy.deepcopy(component_meta),
        "spec": spec,
    }


def _set_default_pod_spec(pod: Obj) -> None:
    """deployment_reconciler.go, setDefaultPodSpec."""
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("securityContext", {})
    pod.setdefault("schedulerName", "default-scheduler")
    for container in pod["containers"]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("imagePullPolicy", "IfNotPresent")
        # "generate default readiness probe for model server container and for transformer
        # container in case of collocation": TCP on ports[0], or 8080 without ports.
        if container.get("name") in (PREDICTOR, TRANSFORMER) and "readinessProbe" not in container:
            ports = container.get("ports") or [{"containerPort": 8080}]
            container["readinessProbe"] = {
                "tcpSocket": {"port": ports[0]["containerPort"]},
                "timeoutSeconds": 1,
                "periodSeconds": 10,
                "successThreshold": 1,
                "failureThreshold": 3,
            }


def _create_default_svc(component_meta: Obj, pod: Obj) -> Obj:
    """pkg/controller/v1beta1/inferenceservice/reconcilers/service/service_reconciler.go,
    createDefaultSvc: the first transformer-container, else containers[0]; its first port
    becomes port 80, its other ports keep their numbers."""
    containers = pod["containers"]
    container = next((c for c in containers if c["name"] == TRANSFORMER), containers[0])
    ports: list[Obj] = []
    for i, port in enumerate(container.get("ports") or []):
        service_port: Obj = {
            "name": port.get("name"),
            "port": 80 if i == 0 else port["containerPort"],  # constants.CommonDefaultHttpPort
            "targetPort": port["containerPort"],
            # The first port's protocol is copied as it is, the others' default to TCP.
            "protocol": port.get("protocol") if i == 0 else port.get("protocol") or "TCP",
        }
        if any(s in (port.get("name") or "") for s in ("grpc", "h2c")):  # isGrpcPort
            service_port["appProtocol"] = "kubernetes.io/h2c"  # getAppProtocol
        ports.append({k: v for k, v in service_port.items() if v})
    if not ports:  # constants.InferenceServiceDefaultHttpPort, named after the component
        ports = [
            {"name": component_meta["name"], "port": 80, "targetPort": 8080, "protocol": "TCP"}
        ]
    # serviceClusterIPNone is false in charts/kserve-resources; customizeService is a no-op
    # (service_reconciler_default.go).
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": copy.deepcopy(component_meta),
        "spec": {"selector": {"app": component_meta["labels"]["app"]}, "ports": ports},
    }


def _mutate_pod(template: Obj) -> None:
    """The pod webhook, pkg/webhook/admission/pod/mutator.go, mutate: it acts on each Pod
    the Deployment creates (needMutate: the serving.kserve.io/inferenceservice label); here
    on the pod template, which then reads as the admitted pods."""
    annotations, pod = template["metadata"]["annotations"], template["spec"]
    if SOURCE_URI in annotations:
        _inject_storage(annotations[SOURCE_URI], annotations, pod)
    # metrics_aggregate_injector.go, InjectMetricsAggregator: the ConfigMap's values
    # ("false") where the annotations are missing.
    for key in METRICS_ANNOTATIONS:
        if annotations.setdefault(key, "false") != "false":
            raise Unsupported(f"{key}: {annotations[key]} is not modelled")
    if "serving.kserve.io/gke-accelerator" in annotations:  # InjectGKEAcceleratorSelector
        raise Unsupported("annotation serving.kserve.io/gke-accelerator is not modelled")


def _inject_storage(uri: str, annotations: dict[str, str], pod: Obj) -> None:
    """storage_initializer_injector.go, InjectStorageInitializer -> CommonStorageInitialization
    (one storage URI, the "backward compatibility" branch)."""
    if not uri.startswith("pvc://"):
        raise Unsupported(f"STORAGE_URI {uri}: only pvc:// (no storage-initializer) is modelled")
    # pkg/utils/storage.go, ParsePvcURI: pvc://<name>[/path].
    claim, _, sub_path = uri.removeprefix("pvc://").partition("/")
    # GetStorageInitializerReadOnlyFlag: read-only unless the annotation is "false".
    read_only = annotations.get(READONLY) != "false"
    # The claim is mounted at /mnt/models, subPath <path>, into the first kserve-container
    # and the first transformer-container (mountContainerNames): utils.AddModelMount skips
    # a container that has a mount of that volume name, and adds the volume once.
    mounted = False
    for name in (PREDICTOR, TRANSFORMER):
        container = next((c for c in pod["containers"] if c["name"] == name), None)
        mounts = [] if container is None else container.setdefault("volumeMounts", [])
        if container is None or any(m["name"] == PVC_VOLUME for m in mounts):
            continue
        mount = {"name": PVC_VOLUME, "mountPath": MODEL_DIR, "subPath": sub_path}
        mounts.append({k: v for k, v in mount.items() if v} | {"readOnly": read_only})
        mounted = True
    volumes = pod.setdefault("volumes", [])
    if mounted and not any(v["name"] == PVC_VOLUME for v in volumes):
        volumes.append({"name": PVC_VOLUME, "persistentVolumeClaim": {"claimName": claim}})
    # "Set or update the CustomSpecStorageUri env variable value": a non-empty STORAGE_URI of
    # the kserve-container becomes /mnt/models.
    predictor = next(c for c in pod["containers"] if c["name"] == PREDICTOR)
    for env in predictor.get("env", []):
        if env["name"] == "STORAGE_URI" and env.get("value"):
            env["value"] = MODEL_DIR


# --- what the API server would refuse -----------------------------------------------------


def validate(emulated: Emulated, versions: tuple[str, ...] = KUBERNETES_VERSIONS) -> None:
    """Raise `Invalid` if the API server would refuse the Deployment or the Service."""
    validate_deployment(emulated.deployment, versions)
    validate_service(emulated.service, versions)


def validate_deployment(deployment: Obj, versions: tuple[str, ...] = KUBERNETES_VERSIONS) -> None:
    """The API server's checks that matter here (names unique, mounts resolved, requests
    within limits: the schemas know none of them), then the schemas, strictly."""
    pod = deployment["spec"]["template"]["spec"]
    where = "spec.template.spec"
    errors: list[str] = []
    seen: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, container in enumerate(pod.get(field, [])):
            path, name = f"{where}.{field}[{i}]", container.get("name")
            if name in seen:
                errors.append(f'{path}.name: Duplicate value: "{name}"')
            seen.add(name)
            errors += _container_errors(path, container, pod)
    volumes = [v["name"] for v in pod.get("volumes", [])]
    errors += [
        f'{where}.volumes[{i}].name: Duplicate value: "{n}"'
        for i, n in enumerate(volumes)
        if n in volumes[:i]
    ]
    labels = deployment["spec"]["template"]["metadata"].get("labels", {})
    selector = deployment["spec"]["selector"]["matchLabels"]
    if any(labels.get(k) != v for k, v in selector.items()):
        errors.append("spec.template.metadata.labels: Invalid value: `selector` does not match")
    _raise(deployment, errors)
    for version in versions:
        _validate_schema(deployment, version)


def _container_errors(path: str, container: Obj, pod: Obj) -> list[str]:
    errors = []
    volumes = {v["name"] for v in pod.get("volumes", [])}
    mount_paths: list[str] = []
    for j, mount in enumerate(container.get("volumeMounts", [])):
        if mount["name"] not in volumes:
            errors.append(f'{path}.volumeMounts[{j}].name: Not found: "{mount["name"]}"')
        if mount["mountPath"] in mount_paths:
            value = mount["mountPath"]
            errors.append(
                f'{path}.volumeMounts[{j}].mountPath: Invalid value: "{value}": must be unique'
            )
        mount_paths.append(mount["mountPath"])
    resources = container.get("resources") or {}
    for resource, request in (resources.get("requests") or {}).items():
        limit = (resources.get("limits") or {}).get(resource)
        if limit is not None and _quantity(request) > _quantity(limit):
            errors.append(
                f'{path}.resources.requests: Invalid value: "{request}": '
                f"must be less than or equal to {resource} limit of {limit}"
            )
    return errors


def _quantity(value: str | int | float) -> Decimal:
    quantity: Decimal = parse_quantity(value)  # type: ignore[no-untyped-call]
    return quantity


def validate_service(service: Obj, versions: tuple[str, ...] = KUBERNETES_VERSIONS) -> None:
    """Port names and numbers unique, names required with several ports; then the schemas."""
    ports = service["spec"].get("ports", [])
    errors = [] if ports else ["spec.ports: Required value"]
    for field in ("name", "port"):
        values = [p.get(field) for p in ports]
        for i, value in enumerate(values):
            if field == "name" and len(ports) > 1 and not value:
                errors.append(f"spec.ports[{i}].name: Required value")
            elif value and value in values[:i]:
                errors.append(f'spec.ports[{i}].{field}: Duplicate value: "{value}"')
    _raise(service, errors)
    for version in versions:
        _validate_schema(service, version)


def _raise(obj: Obj, errors: list[str]) -> None:
    """The API server's wording: `Deployment.apps "name" is invalid: [a, b]`."""
    if errors:
        group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
        kind = f"{obj['kind']}.{group}" if group else obj["kind"]
        listed = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise Invalid(f'{kind} "{obj["metadata"]["name"]}" is invalid: {listed}')


def _validate_schema(obj: Obj, version: str) -> None:
    try:
        validate_kubernetes(obj, version)
    except AssertionError as error:
        raise Invalid(f"Kubernetes {version}: {error}") from None
