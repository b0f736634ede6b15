"""What the chart does: the two predictor modes, the store, training and retraining, the
first install without hooks, probes, rolling on changes, exposure, scaling, NOTES and the
`helm test` pod."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.chart.chart import (
    CHART,
    Rendered,
    all_containers,
    env_of,
    load_values,
    merged,
    pod_labels,
    pod_specs,
    predictor_of,
    predictor_pod,
    rendered_case,
    sidecar_of,
)

DEFAULT = load_values(CHART / "ci" / "default-values.yaml")


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations") or {})


def training_pods(rendered: Rendered) -> list[dict[str, Any]]:
    return [
        pod for kind in ("Job", "CronJob") for obj in rendered.kinds(kind) for pod in pod_specs(obj)
    ]


# --- modes --------------------------------------------------------------------------------


def test_deployment_mode_is_a_deployment_and_a_service() -> None:
    default = rendered_case("default")
    assert not default.kinds("InferenceService")
    deployment, service = default.one("Deployment"), default.one("Service")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert selector.items() <= pod_labels(deployment).items()
    assert selector["app.kubernetes.io/component"] == "predictor"


def test_kserve_mode_is_an_inference_service_in_raw_deployment_mode() -> None:
    kserve = rendered_case("kserve")
    assert not kserve.kinds("Deployment") and not kserve.kinds("Service")
    assert not kserve.kinds("HorizontalPodAutoscaler")
    isvc = kserve.one("InferenceService")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert annotations(isvc)["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert annotations(isvc)["serving.kserve.io/autoscalerClass"] == "none"
    predictor = isvc["spec"]["predictor"]
    # KServe's collocation layout: it writes its predictor container over containers[0].
    assert [c["name"] for c in predictor["containers"]] == [
        "kserve-container",
        "transformer-container",
    ]
    assert predictor["minReplicas"] == predictor["maxReplicas"] == 1


def test_kserve_reads_the_store_from_the_claim_it_mounts_at_mnt_models() -> None:
    isvc = rendered_case("kserve").one("InferenceService")
    container = predictor_of(isvc["spec"]["predictor"])
    env = env_of(container)
    assert env["STORAGE_URI"] == "pvc://credit-agi-credit-store/store"
    # The predictor picks its store once at start, before the first model lands: point
    # MODEL_STORE at KServe's mount rather than rely on finding metadata.json there.
    assert env["MODEL_STORE"] == env["KSERVE_STORAGE_PATH"] == "/mnt/models"
    assert not any(m["mountPath"].startswith("/mnt/") for m in container["volumeMounts"])


def test_kserve_autoscaling_is_kserves_own_hpa() -> None:
    scaling = rendered_case("kserve-scaling")
    isvc = scaling.one("InferenceService")
    assert annotations(isvc)["serving.kserve.io/deploymentMode"] == "Standard"
    assert annotations(isvc)["serving.kserve.io/autoscalerClass"] == "hpa"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 5)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("cpu", 70)
    assert not scaling.kinds("HorizontalPodAutoscaler")
    assert scaling.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == "50%"


def test_the_deployment_mounts_the_store_claim_read_only() -> None:
    pod = predictor_pod(rendered_case("default"))
    predictor = predictor_of(pod)
    store = next(m for m in predictor["volumeMounts"] if m["name"] == "store")
    assert store == {"name": "store", "mountPath": "/mnt/store", "readOnly": True}
    assert env_of(predictor)["MODEL_STORE"] == "/mnt/store/store"
    claim = next(v for v in pod["volumes"] if v["name"] == "store")["persistentVolumeClaim"]
    assert claim["claimName"] == "credit-agi-credit-store"


def test_no_pod_mounts_a_sub_path(rendered: Rendered) -> None:
    """The kubelet creates a missing subPath directory as root: the training job, UID
    10001, could not write into it on every kind of storage. The claim is mounted whole."""
    pods = [predictor_pod(rendered), *training_pods(rendered)]
    for pod in pods:
        for container in all_containers(pod):
            assert all("subPath" not in m for m in container.get("volumeMounts", []))


# --- the store ----------------------------------------------------------------------------


def test_the_store_claim_is_kept_on_uninstall() -> None:
    pvc = rendered_case("default").one("PersistentVolumeClaim")
    assert annotations(pvc)["helm.sh/resource-policy"] == "keep"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert "`helm uninstall` leaves it" in rendered_case("default").notes


def test_an_existing_claim_replaces_the_chart_claim() -> None:
    claim = rendered_case("data-claim")
    assert not claim.kinds("PersistentVolumeClaim")
    predictor = predictor_pod(claim)
    users = [(predictor, predictor_of(predictor))]
    users += [(pod, pod["containers"][0]) for pod in training_pods(claim)]
    for pod, container in users:
        store = next(v for v in pod["volumes"] if v["name"] == "store")
        assert store["persistentVolumeClaim"]["claimName"] == "risk-models"
        assert env_of(container)["MODEL_STORE"] == "/mnt/store"  # subPath "": the claim's root


def test_training_is_scheduled_beside_a_predictor_only_with_a_read_write_once_store() -> None:
    for pod in training_pods(rendered_case("default")):
        term = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "predictor"
    for pod in training_pods(rendered_case("data-claim")):  # ReadWriteMany
        assert "affinity" not in pod


# --- training -----------------------------------------------------------------------------


def test_only_the_install_renders_the_first_training_job_named_by_its_spec() -> None:
    job = rendered_case("default").one("Job")
    name = job["metadata"]["name"]
    assert re.fullmatch(r"credit-agi-credit-train-[0-9a-f]{10}", name)
    assert annotations(job)["helm.sh/resource-policy"] == "keep"  # no upgrade deletes it
    assert f"job/{name}" in rendered_case("default").notes
    rows = merged(DEFAULT, {"training": {"data": {"synthetic": {"rows": 30000}}}})
    assert Rendered.of("rows", rows).one("Job")["metadata"]["name"] != name
    for revision in (2, 17):  # upgrades and rollbacks: no Job (tests/chart/test_upgrades.py)
        assert not Rendered.of("default", DEFAULT, revision=revision).kinds("Job")


def test_no_hook_can_deadlock_the_first_install(rendered: Rendered) -> None:
    """`helm install --wait`: the Job and the predictor start together (the predictor turns
    ready when the first model lands); the only hooks are `helm test`'s."""
    for obj in rendered.objects:
        hook = annotations(obj).get("helm.sh/hook")
        assert hook in (None, "test"), (obj["kind"], hook)
        if hook == "test" and obj["kind"] == "Pod":
            # kept until the next `helm test`, so that `helm test --logs` can read it (Helm 3
            # deletes a hook-succeeded pod first, helm/helm#9098)
            assert annotations(obj)["helm.sh/hook-delete-policy"] == "before-hook-creation"


def test_the_first_job_trains_an_empty_store_from_synthetic_data_by_default() -> None:
    job = rendered_case("default").one("Job")
    pod = next(pod_specs(job))
    train = pod["containers"][0]
    assert train["args"] == [
        "train",
        "--synthetic",
        "--rows",
        "20000",
        "--seed",
        "42",
        "--if-empty",
    ]
    assert env_of(train)["DATA_PATH"] == "/mnt/data/application_train.csv"
    assert env_of(train)["MODEL_STORE"] == "/mnt/store/store"
    store = next(m for m in train["volumeMounts"] if m["name"] == "store")
    assert store == {"name": "store", "mountPath": "/mnt/store"}  # read-write
    assert "initContainers" not in pod
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data["emptyDir"]["sizeLimit"] == "1Gi"
    assert pod["restartPolicy"] == "Never"


def test_data_from_a_url_is_downloaded_by_an_init_container() -> None:
    url = rendered_case("data-url")
    pod = next(pod_specs(url.one("Job")))
    fetch = pod["initContainers"][0]
    env = env_of(fetch)
    assert env["DATA_URL"] == "https://data.example.com:8443/home-credit/application_train.csv"
    assert env["DATA_SHA256"].startswith("52e96b89")
    assert fetch["command"] == ["python", "/opt/agi-credit-chart/fetch_data.py"]
    assert fetch["image"] == "registry.example.com/risk/agi-credit-training:20261126-abc1234"
    assert "--synthetic" not in pod["containers"][0]["args"]
    assert env_of(fetch)["TZ"] == env_of(pod["containers"][0])["TZ"] == "Europe/Paris"
    policy = next(
        p for p in url.kinds("NetworkPolicy") if p["metadata"]["name"].endswith("-training")
    )
    url_rule = policy["spec"]["egress"][1]
    assert url_rule["ports"] == [{"port": 8443, "protocol": "TCP"}]
    assert url_rule["to"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}]

    # Through a proxy: its port instead.
    values = load_values(Path(__file__).parent / "values" / "data-url-values.yaml")
    values["training"]["data"]["url"]["egressPort"] = 3128
    proxied = Rendered.of("data-url", values)
    policy = next(
        p for p in proxied.kinds("NetworkPolicy") if p["metadata"]["name"].endswith("-training")
    )
    assert policy["spec"]["egress"][1]["ports"] == [{"port": 3128, "protocol": "TCP"}]


def test_data_from_a_claim_is_mounted_read_only() -> None:
    pod = next(pod_specs(rendered_case("data-claim").one("Job")))
    train = pod["containers"][0]
    assert env_of(train)["DATA_PATH"] == "/mnt/data/2026/application_train.csv"
    mount = next(m for m in train["volumeMounts"] if m["name"] == "data")
    assert mount["readOnly"] is True
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"] == {"claimName": "home-credit-data", "readOnly": True}


def test_the_cronjob_retrains_unconditionally_and_on_demand() -> None:
    cron = rendered_case("cronjob")
    cronjob = cron.one("CronJob")
    assert cronjob["metadata"]["name"] == "credit-agi-credit-retrain"
    assert cronjob["spec"]["schedule"] == "*/30 * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    train = next(pod_specs(cronjob))["containers"][0]
    assert "--if-empty" not in train["args"]
    assert env_of(train)["MIN_AUC"] == "0.5"
    assert "create job --from=cronjob/credit-agi-credit-retrain" in cron.notes
    assert cronjob["spec"]["suspend"] is False
    # Without a schedule it is there, suspended: the template of an on-demand retrain.
    default = rendered_case("default")
    assert default.one("CronJob")["spec"]["suspend"] is True
    assert "create job --from=cronjob/credit-agi-credit-retrain" in default.notes


# --- probes and rolling -------------------------------------------------------------------


def test_pod_readiness_comes_from_the_sidecar_asking_the_predictor(rendered: Rendered) -> None:
    pod = predictor_pod(rendered)
    auth, predictor = sidecar_of(pod), predictor_of(pod)
    assert auth["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert auth["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert auth["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    # The predictor is on loopback, where the kubelet's httpGet cannot reach: exec probes.
    # Readiness must be set, or KServe adds a TCP probe on the pod IP that never succeeds.
    for probe, path in [
        ("startupProbe", "/v2/health/live"),
        ("livenessProbe", "/v2/health/live"),
        ("readinessProbe", "/v2/health/ready"),
    ]:
        command = predictor[probe]["exec"]["command"]
        assert command[:2] == ["python", "-c"]
        assert f"'http://127.0.0.1:8080{path}'" in command[2]


def test_config_and_secret_changes_roll_the_predictor_pods() -> None:
    def pod_annotations(values: dict[str, Any]) -> dict[str, str]:
        rendered = Rendered.of("default", values)
        return rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]

    before = pod_annotations(DEFAULT)
    rotated = {**DEFAULT, "auth": {**DEFAULT["auth"], "jwt": {"secret": "r" * 48}}}
    after = pod_annotations(rotated)
    assert before["checksum/auth"] != after["checksum/auth"]
    assert before["checksum/config"] == after["checksum/config"]
    # Generated secrets are random in each render (`lookup` keeps them on a cluster): the
    # checksum follows the values, so an upgrade that changes none rolls no pod.
    assert pod_annotations({}) == pod_annotations({})
    isvc = rendered_case("kserve").one("InferenceService")
    assert {"checksum/config", "checksum/auth"} <= isvc["spec"]["predictor"]["annotations"].keys()


# --- exposure and scaling -----------------------------------------------------------------


def test_ingress_and_httproute_lead_to_the_sidecar_service() -> None:
    ingress = rendered_case("ingress").one("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "credit-agi-credit", "port": {"number": 8000}}
    assert ingress["spec"]["tls"][0]["hosts"] == ["agi-credit.ci.local"]

    route = rendered_case("monitoring").one("HTTPRoute")
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "credit-agi-credit", "port": 8000}]
    assert route["spec"]["parentRefs"][0]["sectionName"] == "https"

    scaling = rendered_case("kserve-scaling")  # KServe's Service: <isvc>-predictor, port 80
    backend = scaling.one("Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "credit-agi-credit-predictor", "port": {"number": 80}}
    assert scaling.one("HTTPRoute")["spec"]["rules"][0]["backendRefs"][0]["port"] == 80


def test_behind_an_ingress_the_sidecar_believes_only_the_trusted_proxies() -> None:
    auth = sidecar_of(predictor_pod(rendered_case("ingress")))
    assert env_of(auth)["TRUSTED_PROXIES"] == "10.244.0.0/16"
    default = sidecar_of(predictor_pod(rendered_case("default")))
    assert "TRUSTED_PROXIES" not in env_of(default)  # X-Forwarded-For ignored


def test_grpc_is_the_sidecars_second_port_and_can_be_turned_off() -> None:
    default = rendered_case("default")
    auth = sidecar_of(predictor_pod(default))
    assert env_of(auth)["AUTH_GRPC_PORT"] == "8001"
    assert env_of(auth)["PREDICTOR_GRPC"] == "127.0.0.1:8081"  # the predictor's, on loopback
    grpc = default.one("Service")["spec"]["ports"][1]
    assert grpc["name"] == "grpc" and grpc["appProtocol"] == "kubernetes.io/h2c"

    off = Rendered.of("no-grpc", merged(DEFAULT, {"auth": {"grpcPort": 0}}))
    auth = sidecar_of(predictor_pod(off))
    assert env_of(auth)["AUTH_GRPC_PORT"] == "0"
    assert [p["name"] for p in auth["ports"]] == ["http"]
    assert [p["name"] for p in off.one("Service")["spec"]["ports"]] == ["http"]


def test_the_hpa_scales_the_deployment_and_the_pdb_keeps_one() -> None:
    hpa_case = rendered_case("hpa")
    hpa = hpa_case.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "credit-agi-credit",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 3)
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu", "memory"]
    assert "replicas" not in hpa_case.one("Deployment")["spec"]  # the HPA owns it
    pdb = hpa_case.one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "predictor"


def test_the_service_monitor_scrapes_the_metrics_relay() -> None:
    monitoring = rendered_case("monitoring")
    monitor = monitoring.one("ServiceMonitor")
    metrics_service = next(
        s for s in monitoring.kinds("Service") if s["metadata"]["name"].endswith("-metrics")
    )
    assert (
        monitor["spec"]["selector"]["matchLabels"].items()
        <= metrics_service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    relay = next(c for c in predictor_pod(monitoring)["containers"] if c["name"] == "metrics")
    assert env_of(relay)["METRICS_UPSTREAM"] == (
        "http://127.0.0.1:8080/metrics,http://127.0.0.1:9091/metrics"  # predictor, sidecar
    )
    assert relay["image"] == sidecar_of(predictor_pod(monitoring))["image"]  # the auth image


def test_the_sidecars_metrics_are_on_loopback_and_relayed_unless_turned_off() -> None:
    monitoring = rendered_case("monitoring")
    auth = sidecar_of(predictor_pod(monitoring))
    assert env_of(auth)["AUTH_METRICS_PORT"] == "9091"
    assert 9091 not in [p["containerPort"] for p in auth["ports"]]  # 127.0.0.1 only

    off = Rendered.of("no-auth-metrics", merged(monitoring.values, {"auth": {"metricsPort": 0}}))
    pod = predictor_pod(off)
    assert env_of(sidecar_of(pod))["AUTH_METRICS_PORT"] == "0"
    relay = next(c for c in pod["containers"] if c["name"] == "metrics")
    assert env_of(relay)["METRICS_UPSTREAM"] == "http://127.0.0.1:8080/metrics"


# --- NOTES and helm test ------------------------------------------------------------------


def test_notes_give_the_port_forward_login_and_predict_commands(rendered: Rendered) -> None:
    kserve = rendered.values.get("mode") == "kserve"
    service, port = ("credit-agi-credit-predictor", 80) if kserve else ("credit-agi-credit", 8000)
    assert f"kubectl -n ml port-forward svc/{service} 8000:{port}" in rendered.notes
    assert "http://127.0.0.1:8000/login" in rendered.notes
    assert "http://127.0.0.1:8000/predict" in rendered.notes
    assert "helm test -n ml credit" in rendered.notes


def test_notes_warn_when_replicas_share_a_read_write_once_store() -> None:
    assert (
        "WARNING: up to 3 predictor pods share a ReadWriteOnce store" in rendered_case("hpa").notes
    )
    assert "ReadWriteOnce store" not in rendered_case("default").notes
    assert "ReadWriteOnce store" not in rendered_case("data-claim").notes  # 3 replicas, RWX


def test_helm_test_logs_in_and_predicts_through_the_service(rendered: Rendered) -> None:
    if rendered.values.get("tests", {}).get("enabled") is False:
        assert not rendered.kinds("Pod")
        return
    pod = rendered.one("Pod")
    assert annotations(pod)["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python", "/opt/agi-credit-chart/smoke_test.py"]
    env = env_of(container)
    kserve = rendered.values.get("mode") == "kserve"
    expected = (
        "http://credit-agi-credit-predictor.ml.svc:80"
        if kserve
        else "http://credit-agi-credit.ml.svc:8000"
    )
    assert env["BASE_URL"] == expected
    credentials = rendered.values.get("tests", {}).get("credentials", {})
    if credentials.get("username"):
        assert env["TEST_USERNAME"] == credentials["username"]
        assert set(env["TEST_PASSWORD"]) == {"secretKeyRef"}  # never in the pod spec
    elif rendered.values.get("env") == "dev":
        assert (env["TEST_USERNAME"], env["TEST_PASSWORD"]) == ("admin", "123456")
    elif not rendered.values.get("auth"):  # prod, no auth values: the generated admin
        assert env["TEST_USERNAME"] == "admin"
        ref = env["TEST_PASSWORD"]["secretKeyRef"]
        assert ref == {"name": "credit-agi-credit-auth", "key": "admin-password"}
    else:  # prod without a test user: the public door only (the log says so)
        assert "TEST_USERNAME" not in env and "TEST_PASSWORD" not in env
    scripts = rendered.one("ConfigMap")["data"]
    assert scripts["smoke_test.py"] == (CHART / "files" / "smoke_test.py").read_text().rstrip("\n")
    policy = next(
        p for p in rendered.kinds("NetworkPolicy") if p["metadata"]["name"].endswith("-tests")
    )
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_images_default_to_the_app_version_and_honour_registry_tag_and_digest() -> None:
    default_images = {
        c["image"] for p in [predictor_pod(rendered_case("default"))] for c in all_containers(p)
    }
    assert default_images == {"agi-credit-auth:0.1.0", "agi-credit-predictor:0.1.0"}
    url = predictor_pod(rendered_case("data-url"))
    assert url["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert [c["image"] for c in url["containers"]] == [
        "registry.example.com/risk/agi-credit-predictor@sha256:" + "0123456789abcdef" * 4,
        "registry.example.com/risk/agi-credit-auth:20261126-abc1234",
    ]
