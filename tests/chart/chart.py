"""The chart under test: rendering with the real Helm SDK (helm-python-sdk: Helm v4's Go SDK
through ctypes, no helm binary), the rendered objects, and their validation.

Objects Kubernetes knows are validated by `kubernetes-validate` (strict: unknown fields
fail). The InferenceService is validated against KServe's own v1beta1 model (the `kserve`
SDK's classes, strictly: an unknown field anywhere fails, required fields are required).
ServiceMonitor and HTTPRoute are checked structurally (`CRD_SCHEMAS`), their metadata as
Kubernetes ObjectMeta.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes.client.models as k8s_models
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "agi-credit"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# Cases that need CRDs or data outside a kind cluster (Prometheus Operator, Gateway API, a
# data URL or claim): rendered and validated here, not installed by `ct install`.
RENDER_ONLY_VALUES = sorted((Path(__file__).parent / "values").glob("*-values.yaml"))
ALL_VALUES = CI_VALUES + RENDER_ONLY_VALUES

RELEASE = "credit"
NAMESPACE = "ml"
# The Kubernetes versions objects are validated against: the oldest the chart supports
# (Chart.yaml kubeVersion) and a current one, both shipped by kubernetes-validate.
KUBERNETES_VERSIONS = ("1.27.0", "1.33.0")

POD_KINDS = {"Deployment", "Job", "CronJob", "Pod", "InferenceService"}


def case_name(path: Path) -> str:
    """`ci/kserve-values.yaml` -> `kserve`."""
    return path.name.removesuffix("-values.yaml")


def load_values(path: Path) -> dict[str, Any]:
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    assert isinstance(values, dict), path
    return values


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` merged in, mapping by mapping (as Helm merges values)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@functools.cache
def chart() -> helm.Chart:
    """The chart, loaded once per process (the handle is immutable and thread-safe)."""
    return helm.Chart.load(CHART)


def render(values: dict[str, Any], *, revision: int = 1) -> dict[str, str]:
    """Template path -> rendered text, as `helm install` would (values checked against
    values.schema.json first). Raises helm.HelmValuesError or helm.HelmRenderError."""
    return chart().render(
        values,
        name=RELEASE,
        namespace=NAMESPACE,
        revision=revision,
        is_install=revision == 1,
        is_upgrade=revision > 1,
    )


@dataclass
class Rendered:
    """One render: its objects (hooks included) and NOTES.txt."""

    name: str
    values: dict[str, Any]
    files: dict[str, str]
    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""

    @classmethod
    def of(cls, name: str, values: dict[str, Any], *, revision: int = 1) -> Rendered:
        files = render(values, revision=revision)
        rendered = cls(name=name, values=values, files=files)
        for path, text in sorted(files.items()):
            if path.endswith("NOTES.txt"):
                rendered.notes = text
                continue
            for document in yaml.safe_load_all(text):
                if document:
                    assert isinstance(document, dict), f"{path}: not an object"
                    document.setdefault("metadata", {})
                    rendered.objects.append(document)
        return rendered

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.kinds(kind)
        assert len(found) == 1, f"{self.name}: {len(found)} {kind} objects"
        return found[0]

    def text(self) -> str:
        return "\n".join(self.files.values())


@functools.cache
def rendered_case(name: str) -> Rendered:
    """The render of one values file by case name (`default`, `kserve`...), once per process."""
    path = next(p for p in ALL_VALUES if case_name(p) == name)
    return Rendered.of(name, load_values(path))


def pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod spec(s) an object runs (none for objects that run no pod)."""
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind in ("Deployment", "Job"):
        yield spec["template"]["spec"]
    elif kind == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "Pod":
        yield spec
    elif kind == "InferenceService":
        yield spec["predictor"]  # a pod spec inline (containers, volumes, securityContext...)


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def pods_of(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(`Kind/name`, pod spec) of every pod the objects run."""
    return [
        (f"{obj['kind']}/{obj['metadata']['name']}", pod)
        for obj in objects
        if obj["kind"] in POD_KINDS
        for pod in pod_specs(obj)
    ]


# --- security properties, asserted on every pod (the chart's and k8s/'s) -------------------


def assert_runs_as_non_root_10001_with_seccomp(where: str, pod: dict[str, Any]) -> None:
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True, where
    assert context["runAsUser"] == context["runAsGroup"] == context["fsGroup"] == 10001, where
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where


def assert_containers_are_read_only_unprivileged_and_without_capabilities(
    where: str, pod: dict[str, Any]
) -> None:
    for container in all_containers(pod):
        context = container["securityContext"]
        name = f"{where}:{container['name']}"
        assert context["runAsNonRoot"] is True, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context.get("privileged", False) is False, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name


def assert_writes_only_to_an_emptydir_tmp_and_its_volumes(where: str, pod: dict[str, Any]) -> None:
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in all_containers(pod):
        mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
        tmp = mounts["/tmp"]
        assert "emptyDir" in volumes[tmp["name"]], where
        assert volumes[tmp["name"]]["emptyDir"].get("sizeLimit"), where
    assert not any("hostPath" in v for v in volumes.values()), where


def assert_no_token_or_host_namespaces(
    where: str, pod: dict[str, Any], service_account: str
) -> None:
    assert pod["automountServiceAccountToken"] is False, where
    assert pod["serviceAccountName"] == service_account, where
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host), (where, host)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value (or the valueFrom mapping)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def predictor_pod(rendered: Rendered) -> dict[str, Any]:
    if rendered.values.get("mode") == "kserve":
        return next(pod_specs(rendered.one("InferenceService")))
    return next(pods_spec_of_deployment(rendered))


def pods_spec_of_deployment(rendered: Rendered) -> Iterator[dict[str, Any]]:
    return pod_specs(rendered.one("Deployment"))


# The predictor pod's containers by role: their names depend on the mode (KServe's layout).
PREDICTOR_NAMES = {"deployment": "predictor", "kserve": "kserve-container"}
SIDECAR_NAMES = {"deployment": "auth", "kserve": "transformer-container"}


def sidecar_of(pod: dict[str, Any]) -> dict[str, Any]:
    """The JWT sidecar of a predictor pod (`auth`, or `transformer-container` with KServe)."""
    (found,) = [c for c in pod["containers"] if c["name"] in SIDECAR_NAMES.values()]
    return found


def predictor_of(pod: dict[str, Any]) -> dict[str, Any]:
    """The predictor container (`predictor`, or `kserve-container` with KServe)."""
    (found,) = [c for c in pod["containers"] if c["name"] in PREDICTOR_NAMES.values()]
    return found


# --- validation ---------------------------------------------------------------------------


def validate_kubernetes(obj: dict[str, Any], version: str) -> None:
    """Strict validation against the Kubernetes JSON schemas; raises with the path."""
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(p) for p in error.path)
        raise AssertionError(
            f"{obj['kind']}/{obj['metadata'].get('name')}: {where}: {error.message}"
        ) from None


def validate_object_meta(obj: dict[str, Any], version: str) -> None:
    """A custom resource's metadata, strictly, as Kubernetes ObjectMeta."""
    validate_kubernetes(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}, version
    )


def _kserve_models() -> Any:
    import kserve.models  # heavy (~1 s): only when an InferenceService is rendered

    return kserve.models


_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "ResourceQuantity": (str, int, float),
    "V1Time": (str,),
    "datetime": (str,),
    "date": (str,),
}
# Names the KServe SDK uses for classes the kubernetes client calls otherwise.
_ALIASES = {"K8sIoApiAppsV1DeploymentStrategy": "V1DeploymentStrategy"}


def _model_class(name: str) -> Any:
    name = _ALIASES.get(name, name)
    cls = getattr(_kserve_models(), name, None) or getattr(k8s_models, name, None)
    if cls is None:
        raise AssertionError(f"no model class {name} to check against")
    return cls


def kserve_model(value: Any, type_name: str, path: str = "") -> Any:
    """`value` (JSON, as rendered) checked against the KServe / Kubernetes model `type_name`
    and built as that model: an unknown field, a wrong type or a missing required field
    raises AssertionError (or the model's own ValueError) naming its path."""
    if m := re.fullmatch(r"(?:list|List)\[(.+)\]", type_name):
        assert isinstance(value, list), f"{path}: expected a list, got {value!r}"
        return [kserve_model(v, m.group(1), f"{path}[{i}]") for i, v in enumerate(value)]
    if m := re.fullmatch(r"(?:dict\(str, |Dict\[str, )(.+)[)\]]", type_name):
        assert isinstance(value, dict), f"{path}: expected a mapping, got {value!r}"
        return {k: kserve_model(v, m.group(1), f"{path}.{k}") for k, v in value.items()}
    if type_name == "object":
        return value
    if type_name in _PRIMITIVES:
        ok = isinstance(value, _PRIMITIVES[type_name]) and not (
            type_name != "bool" and isinstance(value, bool)
        )
        assert ok, f"{path}: expected {type_name}, got {value!r}"
        return value
    cls = _model_class(type_name)
    assert isinstance(value, dict), f"{path}: expected a {type_name} object, got {value!r}"
    by_json_name = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    unknown = sorted(set(value) - set(by_json_name))
    assert not unknown, f"{path or type_name}: unknown fields {unknown} for {cls.__name__}"
    kwargs = {
        by_json_name[k]: kserve_model(v, cls.openapi_types[by_json_name[k]], f"{path}.{k}")
        for k, v in value.items()
    }
    try:
        return cls(**kwargs)
    except ValueError as error:
        raise AssertionError(f"{path or type_name}: {error}") from None


def validate_inference_service(obj: dict[str, Any], version: str) -> None:
    assert obj["apiVersion"] == "serving.kserve.io/v1beta1", obj["apiVersion"]
    validate_object_meta(obj, version)
    kserve_model(obj, "V1beta1InferenceService")
    # The pod parts KServe passes to Kubernetes, validated by Kubernetes' own schemas too:
    # the predictor spec is a PodSpec plus KServe's component fields.
    kserve_only = {
        "minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "labels", "annotations",
        "canaryTrafficPercent", "containerConcurrency", "timeout", "batcher", "logger",
        "deploymentStrategy", "autoScaling", "storageUris", "workerSpec",
    }  # fmt: skip
    pod = {k: v for k, v in obj["spec"]["predictor"].items() if k not in kserve_only}
    validate_kubernetes(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": obj["metadata"]["name"], "labels": pod_labels(obj)},
            "spec": pod,
        },
        version,
    )


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    """The labels the pods of an object get."""
    if obj["kind"] == "InferenceService":
        return dict(obj["spec"]["predictor"].get("labels", {}))
    if obj["kind"] == "Pod":
        return dict(obj["metadata"].get("labels", {}))
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
    return dict(obj["spec"]["template"]["metadata"]["labels"])


def _strict(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": required or [],
    }


_STR = {"type": "string", "minLength": 1}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_SELECTOR = _strict({"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}})

# The fields this chart renders, from the CRDs (monitoring.coreos.com/v1 ServiceMonitor of
# the Prometheus Operator, gateway.networking.k8s.io/v1 HTTPRoute of the Gateway API).
CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _strict(
        {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": {"type": "object"},
            "spec": _strict(
                {
                    "selector": _SELECTOR,
                    "namespaceSelector": _strict(
                        {"matchNames": {"type": "array", "items": _STR}, "any": {"type": "boolean"}}
                    ),
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": _strict(
                            {
                                "port": _STR,
                                "path": {"type": "string", "pattern": "^/"},
                                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                "scrapeTimeout": {
                                    "type": "string",
                                    "pattern": "^[0-9]+(ms|s|m|h)$",
                                },
                            },
                            ["port"],
                        ),
                    },
                },
                ["selector", "endpoints"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): _strict(
        {
            "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
            "kind": {"const": "HTTPRoute"},
            "metadata": {"type": "object"},
            "spec": _strict(
                {
                    "parentRefs": {
                        "type": "array",
                        "minItems": 1,
                        "items": _strict(
                            {
                                "group": {"type": "string"},
                                "kind": {"type": "string"},
                                "name": _STR,
                                "namespace": {"type": "string"},
                                "sectionName": {"type": "string"},
                                "port": _PORT,
                            },
                            ["name"],
                        ),
                    },
                    "hostnames": {"type": "array", "items": _STR},
                    "rules": {
                        "type": "array",
                        "items": _strict(
                            {
                                "matches": {
                                    "type": "array",
                                    "items": _strict(
                                        {
                                            "path": _strict(
                                                {
                                                    "type": {
                                                        "enum": [
                                                            "Exact",
                                                            "PathPrefix",
                                                            "RegularExpression",
                                                        ]
                                                    },
                                                    "value": {"type": "string", "pattern": "^/"},
                                                }
                                            )
                                        }
                                    ),
                                },
                                "backendRefs": {
                                    "type": "array",
                                    "items": _strict(
                                        {"name": _STR, "port": _PORT}, ["name", "port"]
                                    ),
                                },
                            }
                        ),
                    },
                },
                ["parentRefs"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
}


def validate(obj: dict[str, Any], version: str) -> None:
    """Validate one rendered object by the most precise means there is for its kind."""
    if obj["kind"] == "InferenceService":
        validate_inference_service(obj, version)
    elif (obj["apiVersion"], obj["kind"]) in CRD_SCHEMAS:
        jsonschema.validate(obj, CRD_SCHEMAS[(obj["apiVersion"], obj["kind"])])
        validate_object_meta(obj, version)
    else:
        validate_kubernetes(obj, version)
