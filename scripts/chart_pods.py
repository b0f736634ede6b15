"""The chart's pods, run for real with podman (`make test-containers`).

No Kubernetes cluster runs here, but podman runs Kubernetes YAML. It runs Pods and
Deployments, shares localhost between a pod's containers, honours runAsUser and
readOnlyRootFilesystem, and turns a PVC into a named volume. It does not run Jobs or
readiness probes. So this renders the chart (Helm's own SDK), runs the training Job's pod
template as a Pod, plays the predictor Deployment on the same volume, polls the readiness
path its manifest declares, and runs tests/e2e through the sidecar's port. This catches
what schemas cannot: wrong commands, ports or env names, a write to a read-only path, a UID
that cannot read the PVC, a sidecar that cannot reach the predictor.
"""

from __future__ import annotations

import copy
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
CHART = REPO / "charts" / "agi-credit"
RELEASE = "podman-e2e"
IMAGES = ("training", "predictor", "auth")


def podman(*argv: str | Path, capture: bool = False, check: bool = True) -> str:
    done = subprocess.run(
        ["podman", *map(str, argv)],
        check=check,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return done.stdout or ""


def render(tag: str) -> list[dict[str, Any]]:
    """The chart's objects for a throwaway dev install of these images."""
    values = {
        "env": "dev",  # admin/123456 for the test only: podman 4.3 cannot mount Secrets
        "image": {"tag": tag, "pullPolicy": "IfNotPresent"},
        "persistence": {"subPath": ""},
        "training": {"data": {"synthetic": {"rows": 20000}}, "minAUC": 0.0},
    }
    manifests = Chart.load(CHART).render(values, name=RELEASE, namespace="default")
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


def published(deployment: dict[str, Any], host_port: int, grpc_port: int) -> dict[str, Any]:
    """The Deployment with the sidecar's ports (REST, gRPC) on the host's loopback (podman
    has no Service)."""
    deployment = copy.deepcopy(deployment)
    sidecar = deployment["spec"]["template"]["spec"]["containers"][0]
    http, grpc = sidecar["ports"]
    http |= {"hostPort": host_port, "hostIP": "127.0.0.1"}
    grpc |= {"hostPort": grpc_port, "hostIP": "127.0.0.1"}
    return deployment


def readiness_url(deployment: dict[str, Any], host_port: int) -> str:
    """The readiness path the manifest declares for the sidecar, on its published port."""
    sidecar = deployment["spec"]["template"]["spec"]["containers"][0]
    return f"http://127.0.0.1:{host_port}{sidecar['readinessProbe']['httpGet']['path']}"


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


def run(tag: str, host_port: int, grpc_port: int) -> None:
    """Load the images into podman, run the chart's pods, run tests/e2e, clean up."""
    for name in IMAGES:
        image = f"agi-credit-{name}:{tag}"
        subprocess.run(f"docker save {image} | podman load -q", shell=True, check=True)
    objects = render(tag)
    pvc, job, deployment = (
        one(objects, "PersistentVolumeClaim"),
        one(objects, "Job"),
        one(objects, "Deployment"),
    )
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
            predictor = published(deployment, host_port, grpc_port)
            played.append(play([*config_maps, predictor], work, "predictor"))
            code = wait_for_exit(container, timeout=600)
            if code != 0:
                podman("logs", container, check=False)
                raise SystemExit(f"the training pod exited {code}")
            wait_ready(readiness_url(deployment, host_port), timeout=300)
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
    left = podman("ps", "-aq", "--filter", f"name={RELEASE}", capture=True).strip()
    assert not left, f"podman containers left behind: {left}"


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]))
