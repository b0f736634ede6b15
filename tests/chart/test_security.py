"""Secure by default, on every pod the chart runs (Deployment, InferenceService, Job,
CronJob, the helm test pod) and for every values file: non-root, read-only root, no
capabilities, seccomp, no API token, the sidecar the only door, no secret in the clear."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from tests.chart.chart import (
    Rendered,
    all_containers,
    assert_containers_are_read_only_unprivileged_and_without_capabilities,
    assert_no_token_or_host_namespaces,
    assert_runs_as_non_root_10001_with_seccomp,
    assert_writes_only_to_an_emptydir_tmp_and_its_volumes,
    env_of,
    pods_of,
    predictor_of,
    predictor_pod,
    rendered_case,
    sidecar_of,
)


def pods(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    found = pods_of(rendered.objects)
    assert found
    return found


def test_every_pod_runs_as_non_root_10001_with_seccomp(rendered: Rendered) -> None:
    for where, pod in pods(rendered):
        assert_runs_as_non_root_10001_with_seccomp(where, pod)


def test_every_container_is_read_only_unprivileged_and_without_capabilities(
    rendered: Rendered,
) -> None:
    for where, pod in pods(rendered):
        assert_containers_are_read_only_unprivileged_and_without_capabilities(where, pod)


def test_every_container_writes_only_to_an_emptydir_tmp_and_its_volumes(
    rendered: Rendered,
) -> None:
    for where, pod in pods(rendered):
        assert_writes_only_to_an_emptydir_tmp_and_its_volumes(where, pod)


def test_no_pod_gets_a_service_account_token_or_host_namespaces(rendered: Rendered) -> None:
    for where, pod in pods(rendered):
        assert_no_token_or_host_namespaces(where, pod, "credit-agi-credit")
    for account in rendered.kinds("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def sidecar_ports(rendered: Rendered) -> list[dict[str, object]]:
    """REST, then v2 gRPC (unless auth.grpcPort is 0): both behind the JWT."""
    auth = rendered.values.get("auth", {})
    ports: list[dict[str, object]] = [
        {"name": "http", "containerPort": auth.get("port", 8000), "protocol": "TCP"}
    ]
    if auth.get("grpcPort", 8001):
        ports.append(
            {"name": "grpc", "containerPort": auth.get("grpcPort", 8001), "protocol": "TCP"}
        )
    return ports


def test_the_predictor_comes_first_and_the_sidecar_holds_the_ports(rendered: Rendered) -> None:
    containers = predictor_pod(rendered)["containers"]
    kserve = rendered.values.get("mode") == "kserve"
    # KServe writes its predictor container over containers[0] and builds its Service from
    # `transformer-container`, first port as port 80: the sidecar's REST port.
    assert containers[0] is predictor_of(predictor_pod(rendered))
    auth = containers[1]
    assert auth["name"] == ("transformer-container" if kserve else "auth")
    assert auth["args"] == ["auth"]
    assert auth["ports"] == sidecar_ports(rendered)
    assert env_of(auth)["AUTH_HOST"] == "0.0.0.0"
    assert env_of(auth)["PREDICTOR_URL"] == "http://127.0.0.1:8080"


def test_the_predictor_listens_on_loopback_and_declares_no_port(rendered: Rendered) -> None:
    containers = predictor_pod(rendered)["containers"]
    predictor = next(c for c in containers if c["args"] == ["serve"])
    expected = "kserve-container" if rendered.values.get("mode") == "kserve" else "predictor"
    assert predictor["name"] == expected and predictor is containers[0]
    assert env_of(predictor)["PREDICTOR_HOST"] == "127.0.0.1"
    assert "ports" not in predictor


def test_services_expose_only_the_sidecar_ports(rendered: Rendered) -> None:
    pod = predictor_pod(rendered)
    by_port_name = {
        p["name"]: (c["name"], p["containerPort"])
        for c in pod["containers"]
        for p in c.get("ports", [])
    }
    for service in rendered.kinds("Service"):
        targets = [by_port_name[port["targetPort"]] for port in service["spec"]["ports"]]
        if service["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics":
            # the relay's own Service: GET /metrics only, never the API
            assert [name for name, _ in targets] == ["metrics"]
        else:
            sidecar = sidecar_of(pod)["name"]
            assert targets == [(sidecar, p["containerPort"]) for p in sidecar_ports(rendered)]


def test_the_metrics_relay_is_the_only_other_port(rendered: Rendered) -> None:
    pod = predictor_pod(rendered)
    exposed = {c["name"]: [p["name"] for p in c.get("ports", [])] for c in pod["containers"]}
    expected = {sidecar_of(pod)["name"]: [str(p["name"]) for p in sidecar_ports(rendered)]}
    if rendered.values.get("metrics", {}).get("enabled"):
        expected["metrics"] = ["metrics"]
    assert {name: ports for name, ports in exposed.items() if ports} == expected


def test_network_policies_admit_only_the_sidecar_port_and_allow_only_dns_out(
    rendered: Rendered,
) -> None:
    values = rendered.values
    if values.get("networkPolicy", {}).get("enabled") is False:
        pytest.skip("networkPolicy disabled")
    policies = {
        p["metadata"]["name"].rsplit("-", 1)[-1]: p["spec"] for p in rendered.kinds("NetworkPolicy")
    }

    predictor = policies["predictor"]
    assert predictor["policyTypes"] == ["Ingress", "Egress"]
    ingress_ports = sorted(p["port"] for rule in predictor["ingress"] for p in rule["ports"])
    expected = [int(str(p["containerPort"])) for p in sidecar_ports(rendered)]
    expected += [9090] if values.get("metrics", {}).get("enabled") else []
    assert ingress_ports == expected
    egress_ports = {p["port"] for rule in predictor["egress"] for p in rule["ports"]}
    assert egress_ports == {53}

    training = policies["training"]
    assert training["ingress"] == [] and training["policyTypes"] == ["Ingress", "Egress"]
    egress_ports = {p["port"] for rule in training["egress"] for p in rule["ports"]}
    url = values.get("training", {}).get("data", {}).get("source") == "url"
    assert egress_ports == ({53, 8443} if url else {53})


def secret_values(values: dict[str, Any]) -> list[str]:
    auth, tests = values.get("auth", {}), values.get("tests", {})
    found = [auth.get("jwt", {}).get("secret"), auth.get("jwt", {}).get("privateKey")]
    found += list(auth.get("users", {}).values())
    found.append(tests.get("credentials", {}).get("password"))
    for extra in values.get("extraDeploy", []):
        if extra.get("kind") == "Secret":
            found += [v for v in extra.get("stringData", {}).values() if "users:" not in v]
    return [s for s in found if s]


def test_secret_values_appear_only_inside_secrets(rendered: Rendered) -> None:
    secrets = secret_values(rendered.values)
    for obj in rendered.objects:
        if obj["kind"] == "Secret":
            continue
        text = str(obj)
        for secret in secrets:
            assert secret not in text, obj["kind"]
            assert base64.b64encode(secret.encode()).decode() not in text, obj["kind"]
    if rendered.values.get("auth", {}).get("jwt", {}).get("secret"):
        chart_secret = next(
            s for s in rendered.kinds("Secret") if s["metadata"]["name"].endswith("-auth")
        )
        assert "stringData" not in chart_secret  # base64 data, as Kubernetes stores it


def test_no_default_credentials_unless_env_is_dev(rendered_prod: Rendered) -> None:
    rendered = rendered_prod
    text = rendered.text()
    assert not re.search(r"(?<![0-9])123456(?![0-9])", text) and "agisecretkey" not in text
    for _, pod in pods(rendered):
        for container in all_containers(pod):
            env = env_of(container)
            assert env.get("ENV", "prod") == "prod"
            if env.get("TEST_USERNAME") == "admin":  # the generated admin, from the Secret
                assert env["TEST_PASSWORD"]["secretKeyRef"]["key"] == "admin-password"


def test_dev_runs_the_sidecar_without_secrets_and_says_so() -> None:
    dev = rendered_case("dev")
    assert not dev.kinds("Secret")
    auth = sidecar_of(predictor_pod(dev))
    assert env_of(auth)["ENV"] == "dev"
    assert "JWT_SECRET" not in env_of(auth) and "USERS_FILE" not in env_of(auth)
    assert "WARNING: env=dev" in dev.notes


def test_the_signing_key_and_users_come_from_the_secret(rendered_prod: Rendered) -> None:
    auth = sidecar_of(predictor_pod(rendered_prod))
    env = env_of(auth)
    if env["JWT_ALGORITHM"] == "HS256":
        assert set(env["JWT_SECRET"]) == {"secretKeyRef"}
    else:
        assert env["JWT_PRIVATE_KEY_PATH"] == "/etc/agi-credit/jwt-private-key.pem"
    if "USERS_FILE" in env:  # users given: the file decides alone
        assert env["USERS_FILE"] == "/etc/agi-credit/users.yaml"
        assert "BOOTSTRAP_ADMIN_PASSWORD" not in env
        mount = next(m for m in auth["volumeMounts"] if m["mountPath"] == "/etc/agi-credit")
        assert mount["readOnly"] is True
    else:  # none given: the admin the chart generated, hashed by the sidecar at start
        ref = env["BOOTSTRAP_ADMIN_PASSWORD"]["secretKeyRef"]
        assert ref == {"name": "credit-agi-credit-auth", "key": "admin-password"}
