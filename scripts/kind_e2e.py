"""`make kind-e2e`: the project on a real Kubernetes cluster (kind), end to end, within one
time budget, failing loudly.

Creates a kind cluster (or reuses KIND_CLUSTER if it exists), builds the images and loads
them with their unique `<yyyymmdd>-<sha>` tag (`docker save` to an archive, then `kind load
image-archive`: Docker 29's containerd image store breaks `kind load docker-image`),
installs agi-credit, waits for the install's training Job (the chart renders it on a
first install only: an upgrade of the release a reused cluster has trains nothing) and
the predictor pods, port-forwards to the sidecar with the `kubernetes` client, runs
tests/e2e (REST, tritonclient, retrain, rollback, promote) and tests/e2e/kind (a Job from
the CronJob, pods, Services) through it, then `helm test --logs`, then a no-op `helm
upgrade` (same values) that must keep the auth Secret, the login and the training Jobs as
they were.

    MODE=deployment   the chart, predictor as a Deployment (env prod, an existingSecret,
                      user `ci`)
    MODE=kserve       cert-manager and KServe first (then a server-side dry-run of an
                      InferenceService until KServe's webhook admits it), then the chart as
                      an InferenceService; user `admin`, password from the Secret the chart
                      generates
    MODE=kustomize    k8s/overlays/kind with `kubectl apply -k`, no Helm; the training Job
                      renamed with the tag, so a reused cluster takes a new tag

Time: the whole run has BUDGET_SECONDS. Every wait (helm --timeout, kubectl wait, the Job
and pod waits, each command) takes the smaller of its own timeout and what is left, and a
run that runs out says "budget ... exhausted during <step>" instead of being cancelled by
the CI job's timeout-minutes (.github/workflows/ci.yml, above the budget; a test checks).
Nothing that waits is retried: only a helm install refused because an admission webhook
did not answer yet is tried again, twice, a few seconds apart.

On a failure from the install on, it prints and writes to KIND_E2E_LOGS (default
build/kind-e2e-logs) the events, every pod's state, every init and app container's logs
(current and previous), `helm status` and `helm history`, and in KServe mode the
InferenceServices as YAML, KServe's events and its controller's logs. The workflow uploads
that directory.

Environment: KIND_CLUSTER (default agi-credit-e2e), KEEP_CLUSTER=1 keeps a cluster this
run created, TAG=... skips the image build and loads that tag, KIND_E2E_LOGS=DIR.
Needs Docker, and helm 3 for the chart modes; kind and kubectl are fetched from Debian into
.venv/bin when missing (scripts/ensure-k8s-tools.sh).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]  # tests.e2e.kind's helpers; steps

from steps import print_timings, step  # noqa: E402
from tests.e2e.kind.cluster import Cluster, ClusterError, section_path, uids  # noqa: E402

MODES = ("deployment", "kserve", "kustomize")
IMAGES = ("agi-credit-training", "agi-credit-predictor", "agi-credit-auth")
RELEASE = "e2e"
NAMESPACE = "agi-credit"
CHART = REPO / "charts" / "agi-credit"
OVERLAY = REPO / "k8s" / "overlays" / "kind"
# The chart's CI cases installed here.
CHART_VALUES = {
    "deployment": CHART / "ci" / "existing-secret-values.yaml",
    "kserve": CHART / "ci" / "kserve-values.yaml",
}
# Who tests/e2e logs in as. deployment: the user of existing-secret-values.yaml's Secret;
# kserve: the admin the chart generates (no auth values), its password in the release's
# Secret; kustomize: ENV=dev's built-in account (k8s/overlays/kind).
CI_USER, CI_PASSWORD = "ci", "ci-password-not-a-secret"
ADMIN_USER, ADMIN_PASSWORD_KEY = "admin", "admin-password"
DEV_USER, DEV_PASSWORD = "admin", "123456"
# The Secret the sidecar reads its signing key (and users) from, per chart mode: the
# existingSecret of the values file, or the one the chart generates (kept by `lookup`).
AUTH_SECRETS = {"deployment": "agi-credit-ci-auth", "kserve": f"{RELEASE}-agi-credit-auth"}

# The whole run's time, images and cluster included: below the e2e-kind job's
# timeout-minutes (and the step's), which leave room for setup before and logs after.
BUDGET_SECONDS = 45 * 60
# Each wait's own limit, in seconds, before the budget caps it.
TIMEOUTS = {
    "images": 30 * 60,
    "cluster": 5 * 60,
    "load": 10 * 60,
    "cert-manager": 10 * 60,
    "kserve-crd": 5 * 60,
    "kserve-resources": 10 * 60,
    "kubectl wait": 5 * 60,
    "webhook": 3 * 60,
    "install": 15 * 60,
    "training job": 15 * 60,
    "ready pods": 10 * 60,
    "tests": 30 * 60,
    "helm test": 10 * 60,
    "upgrade": 10 * 60,
    "command": 2 * 60,
}
GRACE = 30  # seconds a tool with its own --timeout gets to report it before it is stopped
MIN_SECONDS = 10  # less than this left: the budget is spent
DIAGNOSTIC_LINES = 200  # printed per section (the files have all of it)

# helm or kubectl refused because an admission webhook did not answer yet (KServe's, just
# installed): worth another try. A wait that timed out never is.
WEBHOOK_NOT_READY = ("failed calling webhook", "connection refused", "no endpoints available")
TIMED_OUT = ("context deadline exceeded", "timed out waiting", "timed out after")

# Versions of what KServe mode installs first (see README, On Kubernetes).
CERT_MANAGER_VERSION = "v1.19.1"
KSERVE_VERSION = "v0.20.0"
# Dry-run (server side) until KServe's webhooks admit it: then the chart's will be too.
WEBHOOK_PROBE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: agi-credit-webhook-probe
  namespace: default
  annotations:
    serving.kserve.io/deploymentMode: RawDeployment
spec:
  predictor:
    containers:
      - name: kserve-container
        image: agi-credit-predictor:webhook-probe
"""


# --- time ---------------------------------------------------------------------------------


class BudgetExhausted(RuntimeError):
    """The run's time budget ran out; the message names the step it ran out in."""


class Budget:
    """The run's time: what is left of BUDGET_SECONDS, and each wait's share of it."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.deadline = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.deadline - self.clock())

    @property
    def spent(self) -> bool:
        return self.remaining() < MIN_SECONDS

    def limit(self, wanted: float, during: str) -> float:
        """The timeout of a wait that wants `wanted` seconds: no more than is left."""
        if self.spent:
            raise self.exhausted(during)
        return min(wanted, self.remaining())

    def exhausted(self, during: str) -> BudgetExhausted:
        return BudgetExhausted(
            f"the time budget of {self.seconds / 60:g} min (BUDGET_SECONDS in "
            f"scripts/kind_e2e.py) was exhausted during {during}"
        )


class Progress:
    """The step the run is in, for the message of a failure."""

    current = "start"


@contextmanager
def stage(name: str, budget: Budget) -> Iterator[None]:
    """A timed step (steps.step); a failure once the budget is spent is the budget's."""
    Progress.current = name
    with step(name):
        if budget.spent:
            raise budget.exhausted(name)
        try:
            yield
        except BudgetExhausted:
            raise
        except Exception as error:
            if budget.spent:
                raise budget.exhausted(f"{name} ({type(error).__name__}: {error})") from error
            raise


# --- commands -----------------------------------------------------------------------------


class CommandTimeout(RuntimeError):
    """A command ran past its timeout and was stopped."""


def command(
    *argv: str | Path,
    timeout: float,
    capture: bool = False,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    hide: Sequence[str] = (),
) -> str:
    """Run `argv` in the repository, stopped (with its children) after `timeout` seconds;
    CalledProcessError when it fails. Printed first, `hide` masked. With `capture`, its
    stdout is returned and both streams are printed when it ends (and kept in the error)."""
    shown = shlex.join(str(a) for a in argv)
    for secret in hide:
        shown = shown.replace(secret, "***")
    print("$", shown, flush=True)
    process = subprocess.Popen(
        [str(a) for a in argv],
        cwd=REPO,
        text=True,
        stdin=subprocess.PIPE if stdin is not None else None,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group: stopped with its children
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(process)
        with suppress(subprocess.TimeoutExpired, OSError, ValueError):
            process.communicate(timeout=5)  # what it wrote; its pipes closed
        raise CommandTimeout(f"`{shown}` did not finish in {timeout:.0f} s") from None
    except BaseException:  # Ctrl-C, a cancelled CI job: its own session would outlive us
        stop(process)
        raise
    if capture:
        sys.stdout.write(stdout or "")
        sys.stderr.write(stderr or "")
        sys.stdout.flush()
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, shown, stdout, stderr)
    return stdout or ""


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the process group this script started (the command and its children), up
    to 10 s for the command to end, then SIGKILL to whatever is left of the group."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(5)


def output_of(error: subprocess.CalledProcessError) -> str:
    return f"{error.stdout or ''}{error.stderr or ''}"


def webhook_not_ready(text: str) -> bool:
    """True when a refusal reads as an admission webhook not answering yet (and not as a
    wait that timed out, which is never retried)."""
    lowered = text.lower()
    timed_out = any(t in lowered for t in TIMED_OUT)
    return not timed_out and any(p in lowered for p in WEBHOOK_NOT_READY)


def helm(*args: str | Path, budget: Budget, during: str, timeout: float) -> str:
    """`helm ARGS --timeout <its share>`, stopped GRACE seconds after that."""
    limit = budget.limit(timeout, during)
    return command(
        "helm", *args, "--timeout", f"{int(limit)}s", timeout=limit + GRACE, capture=True
    )


def helm_install(
    *args: str | Path,
    budget: Budget,
    during: str,
    timeout: float,
    attempts: int = 3,
    pause: float = 10,
) -> None:
    """`helm upgrade --install ARGS`, tried again only when an admission webhook did not
    answer yet (refused before anything is waited for): a timeout is never retried."""
    for attempt in range(1, attempts + 1):
        try:
            helm("upgrade", "--install", *args, budget=budget, during=during, timeout=timeout)
            return
        except subprocess.CalledProcessError as error:
            if attempt == attempts or not webhook_not_ready(output_of(error)):
                raise
            print(f"{during}: a webhook did not answer yet; again in {pause:.0f} s", flush=True)
            time.sleep(pause)


def kubectl_wait(
    context: str, namespace: str, condition: str, what: str, *, budget: Budget
) -> None:
    limit = budget.limit(TIMEOUTS["kubectl wait"], f"kubectl wait {what}")
    command(
        "kubectl", "--context", context, "-n", namespace, "wait", f"--timeout={int(limit)}s",
        f"--for={condition}", what, timeout=limit + GRACE,
    )  # fmt: skip


# --- what is installed --------------------------------------------------------------------


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


def chart_arguments(mode: str, tag: str, context: str) -> list[str | Path]:
    """The release, chart and values of `helm upgrade --install`: the same for the install
    and the no-op upgrade after the tests."""
    return [
        RELEASE, CHART, "--kube-context", context, "--namespace", NAMESPACE,
        "--create-namespace", "-f", CHART_VALUES[mode], *set_arguments(chart_overrides(tag)),
        "--wait",
    ]  # fmt: skip


def job_names(manifests: str) -> list[str]:
    """The names of the Jobs in a stream of YAML documents (`helm get manifest`, a build)."""
    return [
        str(doc["metadata"]["name"])
        for doc in yaml.safe_load_all(manifests)
        if isinstance(doc, dict) and doc.get("kind") == "Job"
    ]


def tagged_job_name(base: str, tag: str) -> str:
    """`<base>-<tag>` as a Job name (a DNS label: its pods' job-name label is one): lower
    case, at most 63 characters, the tag kept whole (or hashed when it is long)."""
    suffix = re.sub(r"[^a-z0-9-]+", "-", tag.lower()).strip("-")
    if not suffix or len(suffix) > 40:
        suffix = hashlib.sha256(tag.encode()).hexdigest()[:12]
    return f"{base[: 62 - len(suffix)].rstrip('-')}-{suffix}"


def build_kustomization(directory: Path) -> str:
    """`kustomize build DIRECTORY` (kustomize from .venv/bin or PATH, else kubectl's)."""
    search = f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    kustomize = shutil.which("kustomize", path=search)
    argv = [kustomize, "build"] if kustomize else ["kubectl", "kustomize"]
    done = subprocess.run(
        [*argv, str(directory)], capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode:
        raise ClusterError(f"{shlex.join(argv)} {directory}: {done.stderr}")
    return done.stdout


def pinned_overlay(tag: str, directory: Path, training_job: str | None = None) -> Path:
    """A kustomization in `directory` that is k8s/overlays/kind with the images at `tag`
    (what `kustomize edit set image` would write, without touching the committed overlay)
    and the training Job renamed `<its name>-<tag>`: a Job's pod template is immutable, so
    a new tag must be a new Job, and the same tag applies again unchanged. `training_job`
    is the overlay's Job name (default: read from its build)."""
    if training_job is None:
        (training_job,) = job_names(build_kustomization(OVERLAY))
    directory.mkdir(parents=True, exist_ok=True)
    images = "".join(f"  - name: {image}\n    newTag: {tag!r}\n" for image in IMAGES)
    rename = (
        "  - target:\n      group: batch\n      version: v1\n      kind: Job\n"
        f"      name: {training_job}\n"
        "    patch: |-\n      - op: replace\n        path: /metadata/name\n"
        f"        value: {tagged_job_name(training_job, tag)}\n"
    )
    (directory / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(OVERLAY, directory)}\n"
        f"images:\n{images}"
        f"patches:\n{rename}",
        encoding="utf-8",
    )
    return directory


# --- steps --------------------------------------------------------------------------------


def require_tools(mode: str, budget: Budget) -> None:
    os.environ["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    limit = budget.limit(TIMEOUTS["images"], "tools")
    command("scripts/ensure-docker.sh", "engine", timeout=limit)
    command("scripts/ensure-k8s-tools.sh", "kind", "kubectl", timeout=limit)
    if mode == "kustomize":
        return
    found = subprocess.run(
        ["helm", "version", "--short"], capture_output=True, text=True, check=False
    )
    if found.returncode:
        sys.exit(
            "kind-e2e: helm is missing (https://helm.sh/docs/intro/install/); "
            "MODE=kustomize needs none"
        )
    if not found.stdout.startswith("v3."):
        print(
            f"kind-e2e: warning: helm {found.stdout.strip()}: CI pins Helm 3 (the chart and "
            "these steps are checked with it)",
            flush=True,
        )


def build_images(budget: Budget) -> str:
    if tag := os.environ.get("TAG"):
        return tag
    tag_file = Path(tempfile.mkdtemp()) / "tag"
    command(
        "make", "--no-print-directory", "images",
        env={"TAG_FILE": str(tag_file)}, timeout=budget.limit(TIMEOUTS["images"], "images"),
    )  # fmt: skip
    return tag_file.read_text().strip()


def ensure_cluster(name: str, budget: Budget) -> bool:
    """True when this run created the cluster."""
    limit = budget.limit(TIMEOUTS["cluster"], "kind create cluster")
    if name in command("kind", "get", "clusters", capture=True, timeout=60).split():
        return False
    wait = max(int(limit) - GRACE, 30)
    command("kind", "create", "cluster", "--name", name, "--wait", f"{wait}s", timeout=limit)
    return True


def containerd_image_store() -> bool:
    """True when Docker keeps images in containerd (Docker 29's default)."""
    done = subprocess.run(
        ["docker", "info", "--format", "{{json .DriverStatus}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return "io.containerd.snapshotter" in done.stdout


def load_images(cluster_name: str, tag: str, budget: Budget) -> None:
    """The images into the kind nodes, through an archive: `docker save` (only the local
    platform with containerd's image store, whose index may name platforms and
    attestations it does not hold), then `kind load image-archive`."""
    limit = budget.limit(TIMEOUTS["load"], "load images")
    archive = Path(tempfile.mkdtemp()) / "images.tar"
    images = [f"{image}:{tag}" for image in IMAGES]
    platform: list[str] = []
    if containerd_image_store():
        server = command(
            "docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}",
            capture=True, timeout=60,
        )  # fmt: skip
        platform = ["--platform", server.strip()]
    try:
        try:
            command("docker", "image", "save", *platform, "-o", archive, *images, timeout=limit)
        except subprocess.CalledProcessError:
            if not platform:
                raise
            print("docker image save --platform failed (Docker < 28?): all platforms then")
            command("docker", "image", "save", "-o", archive, *images, timeout=limit)
        command(
            "kind", "load", "image-archive", "--name", cluster_name, archive,
            timeout=budget.limit(limit, "load images"),
        )  # fmt: skip
    finally:
        archive.unlink(missing_ok=True)
        archive.parent.rmdir()


def install_kserve(context: str, budget: Budget) -> None:
    """cert-manager, then KServe's CRDs and controller, raw deployment ("Standard") the
    default, without Istio or Knative; returns once KServe's webhook admits an
    InferenceService."""
    kube = ["--kube-context", context]
    helm(
        "upgrade", "--install", "cert-manager",
        "oci://quay.io/jetstack/charts/cert-manager", "--version", CERT_MANAGER_VERSION,
        *kube, "--namespace", "cert-manager", "--create-namespace",
        "--set", "crds.enabled=true", "--wait",
        budget=budget, during="helm install cert-manager", timeout=TIMEOUTS["cert-manager"],
    )  # fmt: skip
    helm(
        "upgrade", "--install", "kserve-crd",
        "oci://ghcr.io/kserve/charts/kserve-crd", "--version", KSERVE_VERSION,
        *kube, "--namespace", "kserve", "--create-namespace", "--wait",
        budget=budget, during="helm install kserve-crd", timeout=TIMEOUTS["kserve-crd"],
    )  # fmt: skip
    # Its ClusterServingRuntimes go through the webhook that this very release starts, and
    # its certificate waits for cert-manager's CA injection: the race KServe's own
    # installer retries (hack/setup/infra/manage.kserve-helm.sh). Only that is retried.
    helm_install(
        "kserve-resources",
        "oci://ghcr.io/kserve/charts/kserve-resources", "--version", KSERVE_VERSION,
        *kube, "--namespace", "kserve", "--wait",
        "--set", "kserve.controller.deploymentMode=Standard",
        "--set", "kserve.controller.gateway.disableIstioVirtualHost=true",
        "--set", "kserve.controller.gateway.disableIngressCreation=true",
        budget=budget, during="helm install kserve-resources",
        timeout=TIMEOUTS["kserve-resources"],
    )  # fmt: skip
    kubectl_wait(context, "kserve", "condition=Ready", "certificate/serving-cert", budget=budget)
    kubectl_wait(
        context, "kserve", "condition=Available", "deployment/kserve-controller-manager",
        budget=budget,
    )  # fmt: skip
    kubectl_wait(
        context, "kserve", "jsonpath={.subsets[0].addresses}",
        "endpoints/kserve-webhook-server-service", budget=budget,
    )  # fmt: skip
    wait_for_webhook(context, budget)


def wait_for_webhook(context: str, budget: Budget, pause: float = 3) -> None:
    """Until a server-side dry-run of an InferenceService is admitted by KServe's webhooks
    (bounded): the chart's InferenceService then meets a webhook that answers."""
    during = "KServe's webhook admitting an InferenceService (dry-run)"
    deadline = time.monotonic() + budget.limit(TIMEOUTS["webhook"], during)
    while True:
        try:
            command(
                "kubectl", "--context", context, "apply", "--dry-run=server", "-f", "-",
                stdin=WEBHOOK_PROBE, capture=True, timeout=budget.limit(60, during),
            )  # fmt: skip
            return
        except subprocess.CalledProcessError as error:
            text = output_of(error)
            if not webhook_not_ready(text):
                raise ClusterError(f"{during}: refused: {text}") from error
            if time.monotonic() + pause >= deadline:
                raise ClusterError(
                    f"{during}: no answer in {TIMEOUTS['webhook']} s: {text}"
                ) from error
        time.sleep(pause)


def install(mode: str, tag: str, context: str, budget: Budget) -> list[str]:
    """agi-credit in the cluster; the names of the training Jobs this install made (none
    when it upgraded a release the cluster already had)."""
    if mode == "kustomize":
        build = REPO / "build" / "kind-e2e"
        overlay = pinned_overlay(tag, build)
        command(
            "kubectl", "--context", context, "apply", "-k", overlay,
            timeout=budget.limit(TIMEOUTS["command"], "kubectl apply -k"),
        )  # fmt: skip
        return job_names(build_kustomization(overlay))
    if mode == "kserve":
        install_kserve(context, budget)
    # the webhook answered the dry-run: retried only if it did not answer the install
    helm_install(
        *chart_arguments(mode, tag, context),
        budget=budget, during=f"helm install {RELEASE}", timeout=TIMEOUTS["install"],
    )  # fmt: skip
    release = ["--kube-context", context, "-n", NAMESPACE]
    limit = budget.limit(TIMEOUTS["command"], "helm get manifest")
    jobs = job_names(
        command("helm", "get", "manifest", RELEASE, *release, capture=True, timeout=limit)
    )
    if not jobs:
        # The chart renders its training Job on `helm install` only (.Release.IsInstall): an
        # upgrade of a release a reused cluster already has trains nothing (the store keeps
        # its model). A first revision without one is a broken chart.
        status = command(
            "helm", "status", RELEASE, *release, "-o", "json", capture=True, timeout=limit
        )
        revision = json.loads(status).get("version")
        if revision == 1:
            raise ClusterError(f"helm install {RELEASE} rendered no training Job")
        print(f"revision {revision} of {RELEASE}: an upgrade, no training Job to wait for")
    return jobs


def wait_until_serving(cluster: Cluster, jobs: list[str], budget: Budget) -> None:
    """The install's training Jobs done (none on an upgrade), then every predictor pod
    ready."""
    for job in jobs:
        cluster.wait_job(job, timeout=budget.limit(TIMEOUTS["training job"], f"job {job}"))
    cluster.wait_ready_pods(timeout=budget.limit(TIMEOUTS["ready pods"], "ready pods"))


def credentials(mode: str, cluster: Cluster) -> tuple[str, str]:
    """(user, password) tests/e2e logs in with (masked in GitHub's log)."""
    if mode == "kustomize":
        return DEV_USER, DEV_PASSWORD
    if mode == "kserve":
        password = cluster.secret_value(AUTH_SECRETS[mode], ADMIN_PASSWORD_KEY)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            print(f"::add-mask::{password}", flush=True)
        return ADMIN_USER, password
    return CI_USER, CI_PASSWORD


def run_tests(mode: str, cluster: Cluster, context: str, budget: Budget) -> None:
    user, password = credentials(mode, cluster)
    run_prefix = [
        sys.executable, "-m", "tests.e2e.kind.run_job", "--context", context,
        "--namespace", NAMESPACE,
        # the retrain of tests/e2e must be promoted whatever its AUC on fresh synthetic data
        "--env", "MIN_AUC=0", "--env", "AUC_TOLERANCE=1",
        "--",
    ]  # fmt: skip
    ready = budget.limit(TIMEOUTS["ready pods"], "ready pods")
    with (
        cluster.port_forward(8000, timeout=ready) as port,
        cluster.port_forward(8001, timeout=ready) as grpc_port,
    ):
        print(f"port-forward: 127.0.0.1:{port}, :{grpc_port} -> the sidecar's 8000, 8001")
        command(
            REPO / ".venv" / "bin" / "pytest", "tests/e2e", "-p", "no:cacheprovider", "-v",
            f"--stack-url=http://127.0.0.1:{port}", f"--stack-grpc=127.0.0.1:{grpc_port}",
            f"--stack-run={shlex.join(run_prefix)}",
            f"--stack-user={user}", f"--stack-password={password}",
            f"--kind-namespace={NAMESPACE}", f"--kind-context={context}",
            hide=[password], timeout=budget.limit(TIMEOUTS["tests"], "tests/e2e"),
        )  # fmt: skip


def helm_test(context: str, budget: Budget) -> None:
    """`helm test --logs`: the test pod's delete policy is before-hook-creation only, so
    Helm 3 still finds it to read (helm/helm#9098)."""
    helm(
        "test", RELEASE, "--kube-context", context, "-n", NAMESPACE, "--logs",
        budget=budget, during="helm test", timeout=TIMEOUTS["helm test"],
    )  # fmt: skip


def login(port: int, user: str, password: str) -> str | None:
    """None when POST /login through the port-forward gives a token, else what it said."""
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/login",
            json={"username": user, "password": password},
            timeout=30,
        )
    except httpx.HTTPError as error:
        return f"POST /login: {error}"
    if response.status_code == 200 and response.json().get("token"):
        return None
    return f"POST /login as {user}: {response.status_code} {response.text[:300]}"


def upgrade_problems(
    secret: str,
    secret_before: Mapping[str, str],
    secret_after: Mapping[str, str],
    jobs_before: Mapping[str, str],
    jobs_after: Mapping[str, str],
    pods_before: Mapping[str, str],
    pods_after: Mapping[str, str],
) -> list[str]:
    """What a no-op upgrade changed that it must not: the auth Secret's data (keys named,
    never values), training Jobs or pods that are new or replaced (a name with a new uid).
    Jobs and pods that went away (their TTL) are no problem."""
    problems = []
    if secret_before != secret_after:
        changed = sorted(
            key
            for key in {*secret_before, *secret_after}
            if secret_before.get(key) != secret_after.get(key)
        )
        problems.append(f"the Secret {secret} changed: {', '.join(changed)}")
    for kind, before, after in (
        ("Jobs", jobs_before, jobs_after),
        ("pods", pods_before, pods_after),
    ):
        new = sorted(name for name, uid in after.items() if before.get(name) != uid)
        if new:
            problems.append(f"new training {kind}: {', '.join(new)}")
    return problems


def check_noop_upgrade(mode: str, tag: str, context: str, cluster: Cluster, budget: Budget) -> None:
    """`helm upgrade` with exactly the install's values must change nothing that matters:
    the auth Secret's data is the same, its password (or the CI user's) still logs in, and
    no training Job or pod is new. ClusterError naming each difference otherwise."""
    secret = AUTH_SECRETS[mode]
    secret_before = cluster.secret_data(secret)
    jobs_before, pods_before = uids(cluster.training_jobs()), uids(cluster.training_pods())
    helm_install(
        *chart_arguments(mode, tag, context),
        budget=budget, during=f"helm upgrade {RELEASE} (no-op)", timeout=TIMEOUTS["upgrade"],
    )  # fmt: skip
    time.sleep(5)  # a Job the upgrade made would have its pod by now
    problems = upgrade_problems(
        secret,
        secret_before,
        cluster.secret_data(secret),
        jobs_before,
        uids(cluster.training_jobs()),
        pods_before,
        uids(cluster.training_pods()),
    )
    user, password = credentials(mode, cluster)
    with cluster.port_forward(
        8000, timeout=budget.limit(TIMEOUTS["ready pods"], "ready pods")
    ) as port:
        if refused := login(port, user, password):
            problems.append(f"after the upgrade, {refused}")
    if problems:
        raise ClusterError("the no-op helm upgrade changed:\n  " + "\n  ".join(problems))
    print(f"no-op upgrade: Secret {secret} unchanged, {user} logs in, no new training Job")


# --- diagnostics --------------------------------------------------------------------------


def logs_directory() -> Path:
    return Path(os.environ.get("KIND_E2E_LOGS") or REPO / "build" / "kind-e2e-logs")


def helm_sections(mode: str, context: str) -> dict[str, str]:
    """`helm status` and `helm history` of the releases this mode installs."""
    releases = [(RELEASE, NAMESPACE)]
    if mode == "kserve":
        releases += [("cert-manager", "cert-manager"), ("kserve-crd", "kserve")]
        releases += [("kserve-resources", "kserve")]
    sections = {}
    for release, namespace in releases:
        for what in ("status", "history"):
            argv = ["helm", what, release, "--kube-context", context, "-n", namespace]
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
                text = done.stdout + done.stderr
            except (OSError, subprocess.TimeoutExpired) as error:
                text = f"({shlex.join(argv)}: {error})"
            sections[f"helm/{release}-{what}"] = text
    return sections


def write_sections(directory: Path, sections: Mapping[str, str]) -> list[Path]:
    """Each section in its file under `directory` (see cluster.section_path)."""
    written = []
    for name, text in sections.items():
        path = section_path(directory, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        written.append(path)
    return written


def tail(text: str, lines: int = DIAGNOSTIC_LINES) -> str:
    kept = text.splitlines()
    if len(kept) <= lines:
        return text
    return f"({len(kept) - lines} lines before these: see the file)\n" + "\n".join(kept[-lines:])


def diagnose(mode: str, context: str) -> None:
    """Everything that says why a run failed: printed (each part's end) and written whole
    to logs_directory(), which the workflow uploads."""
    sections: dict[str, str] = {}
    try:
        sections.update(Cluster(NAMESPACE, context).diagnostic_sections(kserve=mode == "kserve"))
    except Exception as error:  # no cluster to ask: say so, and go on with helm's view
        sections["cluster"] = f"(no diagnostics from the cluster: {error})"
    if mode != "kustomize":
        sections.update(helm_sections(mode, context))
    directory = logs_directory()
    written = write_sections(directory, sections)
    for name, text in sections.items():
        print(f"== {name}\n{tail(text)}", flush=True)
    print(f"\nkind-e2e: {len(written)} diagnostic files in {directory}", flush=True)


# --- the run ------------------------------------------------------------------------------


def run(mode: str, cluster_name: str, budget: Budget) -> None:
    context = f"kind-{cluster_name}"
    with stage("tools", budget):
        require_tools(mode, budget)
    with stage("images", budget):
        tag = build_images(budget)
    created = False
    try:
        with stage(f"kind cluster {cluster_name}", budget):
            created = ensure_cluster(cluster_name, budget)
        with stage(f"load images :{tag}", budget):
            load_images(cluster_name, tag, budget)
        try:
            with stage(f"install ({mode})", budget):
                jobs = install(mode, tag, context, budget)
            cluster = Cluster(NAMESPACE, context)
            with stage("the install's training Job, then ready predictor pods", budget):
                wait_until_serving(cluster, jobs, budget)
            with stage("tests/e2e and tests/e2e/kind through a port-forward", budget):
                run_tests(mode, cluster, context, budget)
            if mode != "kustomize":
                with stage("helm test", budget):
                    helm_test(context, budget)
                with stage("no-op helm upgrade", budget):
                    check_noop_upgrade(mode, tag, context, cluster, budget)
        except BaseException:
            with step("diagnostics"):
                diagnose(mode, context)
            raise
    finally:
        if created and os.environ.get("KEEP_CLUSTER") != "1":
            with step("delete the cluster"):
                subprocess.run(["kind", "delete", "cluster", "--name", cluster_name], check=False)


def main() -> None:
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        return
    budget = Budget(BUDGET_SECONDS)
    mode = os.environ.get("MODE", "deployment")
    if mode not in MODES:
        sys.exit(f"kind-e2e: MODE={mode}: one of {', '.join(MODES)}")
    cluster_name = os.environ.get("KIND_CLUSTER", "agi-credit-e2e")
    try:
        run(mode, cluster_name, budget)
    except BudgetExhausted as error:
        sys.exit(f"\nkind-e2e ({mode}): FAILED: {error}")
    except (ClusterError, CommandTimeout, subprocess.CalledProcessError) as error:
        spent = (budget.seconds - budget.remaining()) / 60
        sys.exit(
            f"\nkind-e2e ({mode}): FAILED during {Progress.current} after {spent:.1f} min: {error}"
        )
    print_timings(f"kind-e2e ({mode})")


if __name__ == "__main__":
    main()
