"""The chart's values: linted by Helm, every value declared and documented, and values that
cannot work refused before anything reaches a cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.chart.chart import CHART, CI_VALUES, NAMESPACE, case_name, load_values, merged, render

SCHEMA = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
VALUES_TEXT = (CHART / "values.yaml").read_text(encoding="utf-8")
DEFAULTS = yaml.safe_load(VALUES_TEXT)

# Kubernetes structures passed through as they are (checked by Kubernetes' own schemas
# when rendered): the schema types them as objects without listing their fields.
PASS_THROUGH = {
    "#/definitions/affinity/properties/nodeAffinity",
    "#/definitions/affinity/properties/podAffinity",
    "#/definitions/affinity/properties/podAntiAffinity",
    "#/properties/extraDeploy/items",
    "#/properties/global",
}

GOOD_PROD = load_values(CHART / "ci" / "default-values.yaml")


def resolve(node: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    ref = node.get("$ref")
    if ref is None:
        return None, node
    target: Any = SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return ref, target


def schema_nodes(node: dict[str, Any], pointer: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node under `node`, with its JSON pointer (definitions by their own)."""
    found = [(pointer, node)]
    for key, child in node.get("properties", {}).items():
        found += schema_nodes(child, f"{pointer}/properties/{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found += schema_nodes(node[key], f"{pointer}/{key}")
    for key, child in node.get("definitions", {}).items():
        found += schema_nodes(child, f"#/definitions/{key}")
    return found


def test_the_chart_is_helm_v2_with_app_version_0_1_0() -> None:
    with helm.Chart.load(CHART) as chart:
        assert chart.metadata["apiVersion"] == "v2"
        assert chart.metadata["appVersion"] == "0.1.0"
        assert chart.name == "agi-credit"
        assert chart.schema is not None


@pytest.mark.parametrize("values_file", CI_VALUES, ids=case_name)
def test_helm_lint_passes_strictly_for_every_ci_values_file(values_file: Path) -> None:
    report = helm.lint(
        CHART, load_values(values_file), strict=True, namespace=NAMESPACE, kube_version="v1.33.0"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], (problems, report["errors"])


def test_every_object_of_the_schema_refuses_unknown_keys() -> None:
    loose = []
    for pointer, node in schema_nodes(SCHEMA):
        types = node.get("type", [])
        is_object = "object" in (types if isinstance(types, list) else [types])
        if is_object and pointer not in PASS_THROUGH:
            extra = node.get("additionalProperties")
            # false, or a typed map (labels, users...): never absent, never true
            if extra is not False and not isinstance(extra, dict):
                loose.append(pointer)
    assert not loose


def test_the_schema_and_values_yaml_declare_the_same_keys() -> None:
    """Every key of values.yaml is in the schema (else Helm would refuse the defaults) and
    every property of the schema has a default in values.yaml (no hidden value)."""

    def walk(schema: dict[str, Any], value: Any, path: str) -> list[str]:
        ref, schema = resolve(schema)
        props = schema.get("properties")
        if props is None or not isinstance(value, dict):
            return []
        missing = [f"{path}{k} (values.yaml only)" for k in value if k not in props]
        if ref is None:  # the chart's own values; Kubernetes structures ($ref) have optional fields
            missing += [f"{path}{k} (schema only)" for k in props if k not in value]
        for key in set(props) & set(value):
            missing += walk(props[key], value[key], f"{path}{key}.")
        return missing

    assert walk(SCHEMA, {**DEFAULTS, "global": {}}, "") == []


def test_values_yaml_documents_every_value() -> None:
    """Every value, or the block it belongs to, has a `## @param <path>` line."""
    documented = set(re.findall(r"^\s*## @param (\S+)", VALUES_TEXT, re.MULTILINE))

    def undocumented(value: Any, path: str) -> list[str]:
        if path in documented:
            return []
        if isinstance(value, dict) and value:
            return [p for k, v in value.items() for p in undocumented(v, f"{path}.{k}".lstrip("."))]
        return [path]

    assert undocumented(DEFAULTS, "") == []


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"replicaCont": 2}, "replicaCont"),
        ({"auth": {"jwt": {"secert": "x" * 40}}}, "secert"),
        ({"persistence": {"sise": "5Gi"}}, "sise"),
        ({"training": {"cronJob": {"schedul": "@daily"}}}, "schedul"),
        ({"ingress": {"hosts": [{"hostname": "a.example.com", "paths": []}]}}, "hostname"),
        ({"predictor": {"resources": {"limit": {"memory": "1Gi"}}}}, "limit"),
        ({"networkPolicy": {"allowedClients": [{"podSelectr": {}}]}}, "podSelectr"),
    ],
)
def test_a_values_file_with_an_unknown_key_fails(override: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=where):
        render(merged(GOOD_PROD, override))


def test_a_misspelt_key_in_a_values_file_fails_the_install() -> None:
    """As `helm install -f my-values.yaml` reads it (Helm's own YAML parser)."""
    text = (CHART / "ci" / "default-values.yaml").read_text(encoding="utf-8")
    good = helm.values_from_yaml(text)
    render(good)
    typo = helm.values_from_yaml(text + "ingres:\n  enabled: true\n")
    with pytest.raises(helm.HelmValuesError, match="additional properties 'ingres' not allowed"):
        render(typo)


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"networkPolicy": {"enabled": "yes"}}, "/networkPolicy/enabled"),
        ({"auth": {"port": 70000}}, "/auth/port"),
        ({"env": "production"}, "/env"),
        ({"mode": "knative"}, "/mode"),
        ({"persistence": {"accessModes": ["ReadWriteOnly"]}}, "/persistence/accessModes"),
        ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
        ({"auth": {"users": {"ci": "plaintext-password"}}}, "/auth/users/ci"),
        ({"training": {"data": {"url": {"location": "ftp://data.example.com/x.csv"}}}}, "location"),
        ({"predictor": {"resources": {"limits": {"memory": "lots"}}}}, "memory"),
        ({"persistence": {"subPath": "../other"}}, "/persistence/subPath"),
        ({"image": {"predictor": {"digest": "latest"}}}, "digest"),
    ],
)
def test_a_values_file_with_a_wrong_type_or_value_fails(
    override: dict[str, Any], where: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        render(merged(GOOD_PROD, override))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"auth": {"jwt": {"secret": "too-short"}, "users": GOOD_PROD["auth"]["users"]}},
            "32 bytes",
        ),
        (
            {"auth": {"jwt": {"secret": "y" * 40, "privateKey": "-----BEGIN EC PRIVATE KEY-----"}}},
            "not both",
        ),
        (
            merged(GOOD_PROD, {"auth": {"existingSecret": "mine"}}),
            "auth.existingSecret replaces",
        ),
        (
            merged(GOOD_PROD, {"training": {"data": {"source": "claim"}}}),
            "training.data.claim.name",
        ),
        (
            merged(GOOD_PROD, {"training": {"data": {"source": "url"}}}),
            "training.data.url.location",
        ),
        (
            merged(GOOD_PROD, {"metrics": {"serviceMonitor": {"enabled": True}}}),
            "needs metrics.enabled",
        ),
        (
            merged(
                GOOD_PROD, {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 2}}
            ),
            "maxReplicas",
        ),
        (merged(GOOD_PROD, {"mode": "kserve", "service": {"type": "NodePort"}}), "service.type"),
        (  # KServe would add its own default to containers[0]
            merged(
                GOOD_PROD, {"mode": "kserve", "predictor": {"resources": {"limits": {"cpu": None}}}}
            ),
            "predictor.resources.limits.cpu",
        ),
        (  # one replica and minAvailable 1: no node could ever be drained
            merged(GOOD_PROD, {"pdb": {"minAvailable": 1, "maxUnavailable": None}}),
            "block every node drain",
        ),
        (
            merged(GOOD_PROD, {"persistence": {"accessModes": ["ReadWriteOncePod"]}}),
            "ReadWriteOncePod lets one pod mount the store",
        ),
    ],
)
def test_values_that_cannot_work_fail_with_a_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
        render(values)


def test_dev_must_be_chosen_explicitly() -> None:
    assert DEFAULTS["env"] == "prod"
    render({"env": "dev"})  # renders with no secret at all


def test_read_write_once_pod_is_accepted_when_no_training_pod_shares_the_store() -> None:
    values = {"persistence": {"accessModes": ["ReadWriteOncePod"]}, "training": {"enabled": False}}
    objects = render(merged(GOOD_PROD, values))["agi-credit/templates/pvc.yaml"]
    assert "ReadWriteOncePod" in objects
