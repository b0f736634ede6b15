"""`make kind-e2e`: the project on a real Kubernetes cluster (kind), end to end.

Creates a kind cluster (or reuses KIND_CLUSTER if it exists), builds the images and loads
them with their unique `<yyyymmdd>-<sha>` tag, installs agi-credit, waits for the first
training Job and the predictor pods, port-forwards to the sidecar with the `kubernetes`
client, runs tests/e2e (REST, tritonclient, retrain, rollback, promote) and tests/e2e/kind
(a Job from the CronJob, pods, Services) through it, then `helm test`. On failure it prints
the namespace's events and every container's logs. The GitHub workflow runs this target.

    MODE=deployment   the chart, predictor as a Deployment (env prod, an existingSecret)
    MODE=kserve       cert-manager and KServe first, then the chart as an InferenceService
    MODE=kustomize    k8s/overlays/kind with `kubectl apply -k`, no Helm

Environment: KIND_CLUSTER (default agi-credit-e2e), KEEP_CLUSTER=1 keeps a cluster this
run created, TAG=... skips the image build and loads that tag.
Needs Docker, and helm for the chart modes; kind and kubectl are fetched from
Debian into .venv/bin when missing (scripts/ensure-k8s-tools.sh).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]  # tests.e2e.kind's helpers; steps

from steps import print_timings, sh, step  # noqa: E402
from tests.e2e.kind.cluster import Cluster, ClusterError  # noqa: E402

MODES = ("deployment", "kserve", "kustomize")
IMAGES = ("agi-credit-training", "agi-credit-predictor", "agi-credit-auth")
RELEASE = "e2e"
NAMESPACE = "agi-credit"
CHART = REPO / "charts" / "agi-credit"
OVERLAY = REPO / "k8s" / "overlays" / "kind"
# The chart's CI cases installed here (prod: users from a Secret, user `ci`).
CHART_VALUES = {
    "deployment": CHART / "ci" / "existing-secret-values.yaml",
    "kserve": CHART / "ci" / "kserve-values.yaml",
}
CI_USER, CI_PASSWORD = "ci", "ci-password-not-a-secret"  # in those values files


def chart_overrides(tag: str) -> dict[str, object]:
    """What the install sets over the CI values: the images just loaded, and retraining on
    demand (tests/e2e/kind: `kubectl create job --from=cronjob/...`)."""
    return {
        "image": {"tag": tag},
        "training": {"cronJob": {"enabled": True, "suspend": True}},
    }


def set_arguments(values: dict[str, object], prefix: str = "") -> list[str]:
    """`--set` arguments for nested values (strings with --set-string)."""
    arguments: list[str] = []
    for key, value in values.items():
        if isinstance(value, dict):
            arguments += set_arguments(value, f"{prefix}{key}.")
        elif isinstance(value, str):
            arguments += ["--set-string", f"{prefix}{key}={value}"]
        else:
            arguments += ["--set", f"{prefix}{key}={str(value).lower()}"]
    return arguments


# Versions of what KServe mode installs first (see README, On Kubernetes).
CERT_MANAGER_VERSION = "v1.19.1"
KSERVE_VERSION = "v0.20.0"


def pinned_overlay(tag: str, directory: Path) -> Path:
    """A kustomization in `directory` that is k8s/overlays/kind with the images at `tag`
    (what `kustomize edit set image` would write, without touching the committed overlay)."""
    directory.mkdir(parents=True, exist_ok=True)
    images = "".join(f"  - name: {image}\n    newTag: {tag!r}\n" for image in IMAGES)
    (directory / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(OVERLAY, directory)}\n"
        f"images:\n{images}",
        encoding="utf-8",
    )
    return directory


def require_tools(mode: str) -> None:
    os.environ["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    sh("scripts/ensure-docker.sh", "engine")
    sh("scripts/ensure-k8s-tools.sh", "kind", "kubectl")
    if mode != "kustomize" and subprocess.run(["helm", "version"], capture_output=True).returncode:
        sys.exit(
            "kind-e2e: helm is missing (https://helm.sh/docs/intro/install/); "
            "MODE=kustomize needs none"
        )


def build_images() -> str:
    if tag := os.environ.get("TAG"):
        return tag
    tag_file = Path(tempfile.mkdtemp()) / "tag"
    sh("make", "--no-print-directory", "images", env={"TAG_FILE": str(tag_file)})
    return tag_file.read_text().strip()


def ensure_cluster(name: str) -> bool:
    """True when this run created the cluster."""
    if name in sh("kind", "get", "clusters", capture=True).split():
        return False
    sh("kind", "create", "cluster", "--name", name, "--wait", "180s")
    return True


def install_kserve(context: str) -> None:
    """cert-manager, then KServe's CRDs and controller, raw deployment ("Standard") the
    default, without Istio or Knative; returns once its webhooks answer."""
    kube = ["--kube-context", context]
    sh(
        "helm", "upgrade", "--install", "cert-manager",
        "oci://quay.io/jetstack/charts/cert-manager", "--version", CERT_MANAGER_VERSION,
        *kube, "--namespace", "cert-manager", "--create-namespace",
        "--set", "crds.enabled=true", "--wait", "--timeout", "10m",
    )  # fmt: skip
    sh(
        "helm", "upgrade", "--install", "kserve-crd",
        "oci://ghcr.io/kserve/charts/kserve-crd", "--version", KSERVE_VERSION,
        *kube, "--namespace", "kserve", "--create-namespace", "--wait",
    )  # fmt: skip
    # The chart's certificate may wait for cert-manager's CA injection: retry, as KServe's
    # own installer does (hack/setup/infra/manage.kserve-helm.sh).
    retry(
        "helm", "upgrade", "--install", "kserve-resources",
        "oci://ghcr.io/kserve/charts/kserve-resources", "--version", KSERVE_VERSION,
        *kube, "--namespace", "kserve", "--wait", "--timeout", "10m",
        "--set", "kserve.controller.deploymentMode=Standard",
        "--set", "kserve.controller.gateway.disableIstioVirtualHost=true",
        "--set", "kserve.controller.gateway.disableIngressCreation=true",
    )  # fmt: skip
    kubectl = ["kubectl", "--context", context, "-n", "kserve", "wait", "--timeout=300s"]
    sh(*kubectl, "--for=condition=Ready", "certificate/serving-cert")
    sh(*kubectl, "--for=condition=Available", "deployment/kserve-controller-manager")
    webhook = "endpoints/kserve-webhook-server-service"
    sh(*kubectl, "--for=jsonpath={.subsets[0].addresses}", webhook)


def retry(*argv: str | Path, attempts: int = 3, pause: float = 15) -> None:
    for attempt in range(1, attempts + 1):
        try:
            sh(*argv)
            return
        except subprocess.CalledProcessError:
            if attempt == attempts:
                raise
            print(f"attempt {attempt} failed; again in {pause:.0f} s", flush=True)
            time.sleep(pause)


def install(mode: str, tag: str, context: str) -> None:
    if mode == "kustomize":
        overlay = pinned_overlay(tag, REPO / "build" / "kind-e2e")
        sh("kubectl", "--context", context, "apply", "-k", overlay)
        return
    if mode == "kserve":
        install_kserve(context)
    # retried: in KServe mode the first InferenceService may meet a webhook still warming up
    retry(
        "helm", "upgrade", "--install", RELEASE, CHART, "--kube-context", context,
        "--namespace", NAMESPACE, "--create-namespace", "-f", CHART_VALUES[mode],
        *set_arguments(chart_overrides(tag)), "--wait", "--timeout", "15m",
    )  # fmt: skip


def run_tests(mode: str, cluster: Cluster, context: str) -> None:
    user, password = ("admin", "123456") if mode == "kustomize" else (CI_USER, CI_PASSWORD)
    run_prefix = [
        sys.executable, "-m", "tests.e2e.kind.run_job", "--context", context,
        "--namespace", NAMESPACE,
        # the retrain of tests/e2e must be promoted whatever its AUC on fresh synthetic data
        "--env", "MIN_AUC=0", "--env", "AUC_TOLERANCE=1",
        "--",
    ]  # fmt: skip
    with cluster.port_forward(8000) as port, cluster.port_forward(8001) as grpc_port:
        print(f"port-forward: 127.0.0.1:{port}, :{grpc_port} -> the sidecar's 8000, 8001")
        sh(
            REPO / ".venv" / "bin" / "pytest", "tests/e2e", "-p", "no:cacheprovider", "-v",
            f"--stack-url=http://127.0.0.1:{port}", f"--stack-grpc=127.0.0.1:{grpc_port}",
            f"--stack-run={shlex.join(run_prefix)}",
            f"--stack-user={user}", f"--stack-password={password}",
            f"--kind-namespace={NAMESPACE}", f"--kind-context={context}",
        )  # fmt: skip


def main() -> None:
    mode = os.environ.get("MODE", "deployment")
    if mode not in MODES:
        sys.exit(f"kind-e2e: MODE={mode}: one of {', '.join(MODES)}")
    cluster_name = os.environ.get("KIND_CLUSTER", "agi-credit-e2e")
    context = f"kind-{cluster_name}"
    with step("tools"):
        require_tools(mode)
    with step("images"):
        tag = build_images()
    created = False
    try:
        with step(f"kind cluster {cluster_name}"):
            created = ensure_cluster(cluster_name)
        with step(f"load images :{tag}"):
            for image in IMAGES:
                sh("kind", "load", "docker-image", "--name", cluster_name, f"{image}:{tag}")
        with step(f"install ({mode})"):
            install(mode, tag, context)
        cluster = Cluster(NAMESPACE, context)
        try:
            with step("first training Job, then ready predictor pods"):
                jobs = [job.metadata.name for job in cluster.training_jobs()]
                assert jobs, "no training Job was created"
                for job in jobs:
                    cluster.wait_job(job, timeout=900)
                cluster.wait_ready_pods(timeout=600)
            with step("tests/e2e and tests/e2e/kind through a port-forward"):
                run_tests(mode, cluster, context)
            if mode != "kustomize":
                with step("helm test"):
                    sh("helm", "test", RELEASE, "--kube-context", context, "-n", NAMESPACE,
                       "--logs", "--timeout", "10m")  # fmt: skip
        except (ClusterError, AssertionError, subprocess.CalledProcessError):
            print(cluster.diagnostics(), flush=True)
            raise
    finally:
        if created and os.environ.get("KEEP_CLUSTER") != "1":
            with step("delete the cluster"):
                sh("kind", "delete", "cluster", "--name", cluster_name)
    print_timings(f"kind-e2e ({mode})")


if __name__ == "__main__":
    main()
