"""The chart's pods, run for real with podman (`make test-containers`).

No Kubernetes cluster runs here, but podman runs Kubernetes YAML. It runs Pods and
Deployments, shares localhost between a pod's containers, honours runAsUser and
readOnlyRootFilesystem, and turns a PVC into a named volume. It does not run Jobs or
readiness probes. So this renders the chart (Helm's own SDK), runs the training Job's pod
template as a Pod, plays the predictor Deployment on the same volume, polls the readiness
path its manifest declares, and runs tests/e2e through the sidecar's port. This catches
what schemas cannot: wrong commands, ports or env names, a write to a read-only path, a UID
that cannot read the PVC, a sidecar that cannot reach the predictor.

`run_kserve` does the same for mode=kserve, which needs KServe's controller: it plays the
Deployment KServe v0.20.0 would make of the chart's InferenceService (emulated from KServe's
source by tests/chart/kserve_v0_20.py: kserve-container over containers[0], the claim
mounted read-only at /mnt/models, STORAGE_URI rewritten, default probes and resources) and
publishes the container ports its Service targets (port 80's and gRPC's) on loopback.
"""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from helm_python import Chart

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.chart.kserve_v0_20: what KServe makes of the chart

from tests.chart import kserve_v0_20  # noqa: E402

CHART = REPO / "charts" / "agi-credit"
RELEASE = "podman-e2e"
KSERVE_RELEASE = "podman-kserve-e2e"
NAMESPACE = "default"
IMAGES = ("training", "predictor", "auth")


def podman(*argv: str | Path, capture: bool = False, check: bool = True) -> str:
    done = subprocess.run(
        ["podman", *map(str, argv)],
        check=check,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return done.stdout or ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render(tag: str, *, mode: str = "deployment", release: str = RELEASE) -> list[dict[str, Any]]:
    """The chart's objects for a throwaway dev install of these images. The store is the
    claim's root (persistence.subPath ""): podman 4.3 mounts a PVC whole, ignoring subPath."""
    values = {
        "mode": mode,
        "env": "dev",  # admin/123456 for the test only: podman 4.3 cannot mount Secrets
        "image": {"tag": tag, "pullPolicy": "IfNotPresent"},
        "persistence": {"subPath": ""},
        "training": {"data": {"synthetic": {"rows": 20000}}, "minAUC": 0.0},
    }
    manifests = Chart.load(CHART).render(values, name=release, namespace=NAMESPACE, is_install=True)
    return [
        doc
        for path, text in manifests.items()
        if path.endswith(".yaml")  # not NOTES.txt
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict) and doc.get("kind")
    ]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and "helm.sh/hook" not in _notes(o)]
    return found


def _notes(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def training_pod(job: dict[str, Any]) -> dict[str, Any]:
    """The Job's pod template as a Pod: podman runs no Jobs."""
    template = copy.deepcopy(job["spec"]["template"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{job['metadata']['name']}-pod", **template.get("metadata", {})},
        "spec": {**template["spec"], "restartPolicy": "Never"},
    }


def container_named(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    (found,) = [c for c in containers if c["name"] == name]
    return found


def published(deployment: dict[str, Any], ports: dict[int, int]) -> dict[str, Any]:
    """The Deployment with these container ports (container port -> host port) on the
    host's loopback: podman has no Service."""
    deployment = copy.deepcopy(deployment)
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for port in container.get("ports", []):
            if port["containerPort"] in ports:
                port |= {"hostPort": ports[port["containerPort"]], "hostIP": "127.0.0.1"}
    return deployment


def readiness_url(deployment: dict[str, Any], container: str, ports: dict[int, int]) -> str:
    """The readiness path the manifest declares for a container, on its published port
    (podman 4.3 runs no readiness probe: the caller polls it)."""
    declared = container_named(deployment, container)
    probe = declared["readinessProbe"]["httpGet"]
    port = probe["port"]
    if isinstance(port, str):  # a named port
        (port,) = [p["containerPort"] for p in declared["ports"] if p.get("name") == port]
    return f"http://127.0.0.1:{ports[port]}{probe['path']}"


def play(objects: list[dict[str, Any]], work: Path, name: str) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    podman("kube", "play", "--quiet", path)
    return path


def wait_for_exit(container: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = podman(
            "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container, capture=True
        )
        status, code = state.split()
        if status == "exited":
            return int(code)
        time.sleep(1)
    raise SystemExit(f"{container} did not finish in {timeout:.0f} s")


def wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} not ready in {timeout:.0f} s")


def load_images(tag: str, *, only_missing: bool = False) -> None:
    """Docker's images of this tag into podman (the two keep separate image stores)."""
    for name in IMAGES:
        image = f"agi-credit-{name}:{tag}"
        if only_missing and subprocess.run(["podman", "image", "exists", image]).returncode == 0:
            continue
        subprocess.run(f"docker save {image} | podman load -q", shell=True, check=True)


def run(tag: str, host_port: int, grpc_port: int) -> None:
    """Load the images into podman, run the chart's pods, run tests/e2e, clean up."""
    load_images(tag)
    objects = render(tag)
    deployment = one(objects, "Deployment")
    http, grpc = container_named(deployment, "auth")["ports"]  # the chart's Service's ports
    ports = {http["containerPort"]: host_port, grpc["containerPort"]: grpc_port}
    predictor = published(deployment, ports)
    ready = readiness_url(deployment, "auth", ports)
    play_and_test(tag, RELEASE, objects, predictor, ready, host_port, grpc_port)


def run_kserve(tag: str, host_port: int, grpc_port: int) -> None:
    """mode=kserve: the pod KServe v0.20.0 would run for the chart's InferenceService, its
    Service's port 80 and gRPC port published, tests/e2e through them (images loaded into
    podman if they are not there yet)."""
    load_images(tag, only_missing=True)
    objects = render(tag, mode="kserve", release=KSERVE_RELEASE)
    emulated = kserve_v0_20.emulate(one(objects, "InferenceService"), namespace=NAMESPACE)
    kserve_v0_20.validate(emulated)  # as the API server would, before podman sees it
    deployment = emulated.deployment
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        if any(m.get("subPath") for m in container.get("volumeMounts", [])):
            # Verified with podman 4.3.1: `kube play` mounts a PVC's named volume whole.
            raise SystemExit(f"{container['name']}: podman 4.3 ignores subPath on a PVC")
    service_ports = emulated.service["spec"]["ports"]
    (grpc,) = [p for p in service_ports if "grpc" in p.get("name", "")]
    (http,) = [p for p in service_ports if p["port"] == 80]
    ports = {http["targetPort"]: host_port, grpc["targetPort"]: grpc_port}
    predictor = published(deployment, ports)
    ready = readiness_url(deployment, "transformer-container", ports)
    play_and_test(tag, KSERVE_RELEASE, objects, predictor, ready, host_port, grpc_port)


def play_and_test(
    tag: str,
    release: str,
    objects: list[dict[str, Any]],
    predictor: dict[str, Any],
    ready: str,
    host_port: int,
    grpc_port: int,
) -> None:
    """Train in the Job's pod, play the predictor Deployment beside it on the same claim,
    wait for `ready`, run tests/e2e through the published ports, clean up."""
    pvc, job = one(objects, "PersistentVolumeClaim"), one(objects, "Job")
    claim = pvc["metadata"]["name"]
    config_maps = [o for o in objects if o["kind"] == "ConfigMap"]
    played: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        try:
            trainer = training_pod(job)
            played.append(play([pvc, *config_maps, trainer], work, "training"))
            container = f"{trainer['metadata']['name']}-{trainer['spec']['containers'][0]['name']}"
            # The predictor starts beside the running job, as on a first install.
            played.append(play([*config_maps, predictor], work, "predictor"))
            code = wait_for_exit(container, timeout=600)
            if code != 0:
                podman("logs", container, check=False)
                raise SystemExit(f"the training pod exited {code}")
            wait_ready(ready, timeout=300)
            beside_store = (
                f"podman run --rm -i --network host --user 10001:10001 --read-only "
                f"--tmpfs /tmp -v {claim}:/mnt/store -e DATA_PATH=/tmp/data.csv "
                f"-e MIN_AUC=0 -e AUC_TOLERANCE=1 --entrypoint env "
                f"localhost/agi-credit-training:{tag}"
            )
            subprocess.run(
                [
                    REPO / ".venv/bin/pytest",
                    "tests/e2e",
                    "-p",
                    "no:cacheprovider",
                    f"--stack-url=http://127.0.0.1:{host_port}",
                    f"--stack-grpc=127.0.0.1:{grpc_port}",
                    f"--stack-run={beside_store}",
                ],
                cwd=REPO,
                check=True,
            )
        finally:
            for path in reversed(played):
                podman("kube", "down", path, check=False)
            podman("volume", "rm", claim, check=False)
    left = podman("ps", "-aq", "--filter", f"name={release}", capture=True).strip()
    assert not left, f"podman containers left behind: {left}"


if __name__ == "__main__":
    # python scripts/chart_pods.py TAG [deployment|kserve]
    play_mode = run_kserve if sys.argv[2:] == ["kserve"] else run
    play_mode(sys.argv[1], free_port(), free_port())
