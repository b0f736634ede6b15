"""scripts/kind_e2e.py without a cluster: its time budget and what it does when the budget
runs out, the commands it stops, the only retry it makes (an admission webhook not
answering yet), the renamed Job of the kustomize mode, the no-op upgrade check, and the
diagnostics of a failed run (tests/e2e/kind/cluster.py's part of them included)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.kind.cluster import Cluster, pod_summary, section_path
from tests.servers import REPO

TAG = "20261207-abc1234"


def load_kind_e2e() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kind_e2e", REPO / "scripts" / "kind_e2e.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["kind_e2e"] = module
    spec.loader.exec_module(module)
    return module


kind_e2e = load_kind_e2e()


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failed(text: str) -> subprocess.CalledProcessError:
    return subprocess.CalledProcessError(1, "helm upgrade --install ...", "", text)


# --- the budget ---------------------------------------------------------------------------


def test_each_wait_gets_its_own_timeout_or_what_is_left_of_the_budget() -> None:
    clock = Clock()
    budget = kind_e2e.Budget(600, clock=clock)
    assert budget.limit(900, "install") == 600
    clock.now += 550
    assert budget.limit(30, "helm test") == 30
    assert budget.limit(900, "helm test") == pytest.approx(50)
    clock.now += 45
    with pytest.raises(kind_e2e.BudgetExhausted, match="exhausted during helm test"):
        budget.limit(900, "helm test")


def test_a_failure_once_the_budget_is_spent_is_reported_as_the_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    budget = kind_e2e.Budget(60, clock=clock)
    with pytest.raises(subprocess.CalledProcessError), kind_e2e.stage("early", budget):
        raise failed("Error: something else")  # time left: the failure as it is
    with pytest.raises(kind_e2e.BudgetExhausted) as raised, kind_e2e.stage("install", budget):
        clock.now += 60
        raise failed("Error: context deadline exceeded")
    assert "exhausted during install" in str(raised.value)
    assert isinstance(raised.value.__cause__, subprocess.CalledProcessError)
    spent = pytest.raises(kind_e2e.BudgetExhausted, match="during helm test")
    with spent, kind_e2e.stage("helm test", budget):
        pytest.fail("a step does not start once the budget is spent")
    capsys.readouterr()


def test_helm_is_given_the_smaller_timeout_and_stopped_a_grace_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[tuple[Any, ...], float]] = []

    def command(*argv: Any, timeout: float, **_: Any) -> str:
        calls.append((argv, timeout))
        return ""

    monkeypatch.setattr(kind_e2e, "command", command)
    clock = Clock()
    budget = kind_e2e.Budget(300, clock=clock)
    kind_e2e.helm("test", "e2e", budget=budget, during="helm test", timeout=900)
    kind_e2e.helm("status", "e2e", budget=budget, during="helm status", timeout=60)
    assert calls[0] == (("helm", "test", "e2e", "--timeout", "300s"), 300 + kind_e2e.GRACE)
    assert calls[1] == (("helm", "status", "e2e", "--timeout", "60s"), 60 + kind_e2e.GRACE)


# --- commands -----------------------------------------------------------------------------


def test_a_command_past_its_timeout_is_stopped_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(kind_e2e.CommandTimeout, match="did not finish in 1 s"):
        kind_e2e.command(
            "sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait", timeout=1, capture=True
        )
    assert time.monotonic() - started < 30
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the command's child {child} still runs")


def test_a_command_masks_what_it_hides_and_keeps_the_output_of_a_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert kind_e2e.command("echo", "out", capture=True, timeout=30) == "out\n"
    with pytest.raises(subprocess.CalledProcessError) as raised:
        kind_e2e.command(
            "sh", "-c", "echo refused >&2; exit 3", "--password=s3cret",
            capture=True, timeout=30, hide=["s3cret"],
        )  # fmt: skip
    assert raised.value.returncode == 3
    assert kind_e2e.output_of(raised.value) == "refused\n"
    printed = capsys.readouterr().out
    assert "--password=***" in printed and "s3cret" not in printed + str(raised.value)


# --- the one retry: a webhook that does not answer yet ------------------------------------

WEBHOOK_REFUSALS = [
    'Error: INSTALLATION FAILED: Internal error occurred: failed calling webhook "inference'
    'service.kserve-webhook-server.defaulter": failed to call webhook: Post "https://kserve-'
    'webhook-server-service.kserve.svc:443/mutate": dial tcp 10.96.1.2:443: connect: '
    "connection refused",
    'Error: Internal error occurred: failed calling webhook "clusterservingruntime.kserve-'
    'webhook-server.validator": failed to call webhook: Post "https://kserve-webhook-server-'
    'service.kserve.svc:443/validate": no endpoints available for service '
    '"kserve-webhook-server-service"',
]
NOT_A_WEBHOOK_RACE = [
    "Error: UPGRADE FAILED: context deadline exceeded",
    "Error: INSTALLATION FAILED: timed out waiting for the condition",
    'Error: admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
    "request: invalid predictor",
    "Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s)",
]


@pytest.mark.parametrize("text", WEBHOOK_REFUSALS)
def test_a_webhook_that_does_not_answer_yet_is_tried_again(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes: list[Exception | None] = [failed(text), failed(text), None]
    calls: list[tuple[Any, ...]] = []

    def helm(*args: Any, **_: Any) -> str:
        calls.append(args)
        if error := outcomes.pop(0):
            raise error
        return ""

    monkeypatch.setattr(kind_e2e, "helm", helm)
    monkeypatch.setattr(kind_e2e.time, "sleep", lambda _: None)
    budget = kind_e2e.Budget(600)
    kind_e2e.helm_install("e2e", "chart", budget=budget, during="install", timeout=900)
    assert len(calls) == 3 and calls[0][:3] == ("upgrade", "--install", "e2e")


@pytest.mark.parametrize("text", NOT_A_WEBHOOK_RACE)
def test_a_timeout_or_a_real_refusal_is_never_retried(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []

    def helm(*args: Any, **_: Any) -> str:
        calls.append(args)
        raise failed(text)

    monkeypatch.setattr(kind_e2e, "helm", helm)
    with pytest.raises(subprocess.CalledProcessError):
        kind_e2e.helm_install("e2e", "chart", budget=kind_e2e.Budget(600), during="i", timeout=9)
    assert len(calls) == 1


def test_a_webhook_still_refusing_after_three_tries_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def helm(*args: Any, **_: Any) -> str:
        calls.append(args)
        raise failed(WEBHOOK_REFUSALS[0])

    monkeypatch.setattr(kind_e2e, "helm", helm)
    monkeypatch.setattr(kind_e2e.time, "sleep", lambda _: None)
    with pytest.raises(subprocess.CalledProcessError):
        kind_e2e.helm_install("e2e", "chart", budget=kind_e2e.Budget(600), during="i", timeout=9)
    assert len(calls) == 3


def test_the_webhook_probe_is_a_server_side_dry_run_until_admitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes: list[Exception | None] = [failed(WEBHOOK_REFUSALS[1]), None]
    seen: list[tuple[tuple[Any, ...], str | None]] = []

    def command(*argv: Any, stdin: str | None = None, **_: Any) -> str:
        seen.append((argv, stdin))
        if error := outcomes.pop(0):
            raise error
        return ""

    monkeypatch.setattr(kind_e2e, "command", command)
    monkeypatch.setattr(kind_e2e.time, "sleep", lambda _: None)
    kind_e2e.wait_for_webhook("kind-x", kind_e2e.Budget(600))
    assert len(seen) == 2
    argv, stdin = seen[0]
    assert "--dry-run=server" in argv and argv[-2:] == ("-f", "-")
    probe = yaml.safe_load(stdin or "")
    assert probe["kind"] == "InferenceService"
    assert probe["spec"]["predictor"]["containers"][0]["name"] == "kserve-container"


def test_the_webhook_probe_gives_up_on_a_real_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    def command(*_: Any, **__: Any) -> str:
        raise failed(NOT_A_WEBHOOK_RACE[2])

    monkeypatch.setattr(kind_e2e, "command", command)
    with pytest.raises(kind_e2e.ClusterError, match="refused"):
        kind_e2e.wait_for_webhook("kind-x", kind_e2e.Budget(600))


# --- the kustomize mode: a new tag is a new Job -------------------------------------------


def test_the_training_job_is_renamed_with_the_tag_as_a_dns_label() -> None:
    assert kind_e2e.tagged_job_name("agi-credit-train", TAG) == f"agi-credit-train-{TAG}"
    hashed = "agi-credit-train-0123456789"
    assert kind_e2e.tagged_job_name(hashed, f"{TAG}-dirty") == f"{hashed}-{TAG}-dirty"
    for tag in (TAG, "Feature/Branch_1", "x" * 80, "---"):
        name = kind_e2e.tagged_job_name("a" * 60, tag)
        assert len(name) <= 63 and name[0].isalnum() and name[-1].isalnum(), name
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-"), name
    assert kind_e2e.tagged_job_name("j", "x" * 80) != kind_e2e.tagged_job_name("j", "x" * 81)


def test_job_names_are_read_from_manifests() -> None:
    manifests = (
        "---\n# Source: x\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
        "---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: e2e-agi-credit-train-0a1b}\n"
        "---\n"
    )
    assert kind_e2e.job_names(manifests) == ["e2e-agi-credit-train-0a1b"]


def kustomize() -> str:
    search = f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    found = shutil.which("kustomize", path=search)
    if not found:
        pytest.skip("no kustomize (scripts/ensure-k8s-tools.sh kustomize)")
    return found


def built(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [kustomize(), "build", str(directory)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


def test_a_new_tag_is_a_new_job_and_the_same_tag_the_same_job(tmp_path: Path) -> None:
    kustomize()
    (base,) = kind_e2e.job_names(kind_e2e.build_kustomization(kind_e2e.OVERLAY))
    names = {}
    for tag, where in ((TAG, "a"), (TAG, "b"), ("20261208-def5678", "c")):
        objects = built(kind_e2e.pinned_overlay(tag, tmp_path / where))
        (job,) = [o for o in objects if o["kind"] == "Job"]
        names[where] = job["metadata"]["name"]
        images = {c["image"] for c in job["spec"]["template"]["spec"]["containers"]}
        assert images == {f"agi-credit-training:{tag}"}
        assert [o["kind"] for o in objects].count("Job") == 1
    assert names["a"] == names["b"] == f"{base}-{TAG}"
    assert names["c"] == f"{base}-20261208-def5678"


def helm_install_answering(
    monkeypatch: pytest.MonkeyPatch, manifest: str, revision: int
) -> list[tuple[Any, ...]]:
    """install() in the deployment mode with helm answering `manifest` and `revision`."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(kind_e2e, "helm_install", lambda *a, **_: calls.append(a))

    def command(*argv: Any, **_: Any) -> str:
        calls.append(argv)
        return manifest if argv[1:3] == ("get", "manifest") else f'{{"version": {revision}}}'

    monkeypatch.setattr(kind_e2e, "command", command)
    return calls


JOB = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: e2e-agi-credit-train-0123456789}\n"
SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: e2e-agi-credit}\n"


def test_a_first_install_waits_for_the_training_job_it_rendered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = helm_install_answering(monkeypatch, f"---\n{SERVICE}---\n{JOB}", 1)
    jobs = kind_e2e.install("deployment", TAG, "kind-x", kind_e2e.Budget(600))
    assert jobs == ["e2e-agi-credit-train-0123456789"]
    assert calls[0] == tuple(kind_e2e.chart_arguments("deployment", TAG, "kind-x"))


def test_a_first_install_without_a_training_job_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    helm_install_answering(monkeypatch, SERVICE, 1)
    with pytest.raises(kind_e2e.ClusterError, match="rendered no training Job"):
        kind_e2e.install("deployment", TAG, "kind-x", kind_e2e.Budget(600))


def test_an_upgrade_on_a_reused_cluster_has_no_training_job_to_wait_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    helm_install_answering(monkeypatch, SERVICE, 4)  # the chart renders the Job at install
    assert kind_e2e.install("deployment", TAG, "kind-x", kind_e2e.Budget(600)) == []


# --- the no-op upgrade --------------------------------------------------------------------


def test_an_upgrade_that_changed_nothing_has_no_problems() -> None:
    same = {"JWT_SECRET": "a2V5", "admin-password": "cHc="}
    jobs, pods = {"train-1": "u1"}, {"train-1-x": "p1"}
    assert kind_e2e.upgrade_problems("s", same, dict(same), jobs, {}, pods, pods) == []


def test_an_upgrade_that_regenerated_the_secret_or_retrained_is_reported() -> None:
    before = {"JWT_SECRET": "a2V5", "admin-password": "cHc="}
    after = {"JWT_SECRET": "bmV3", "admin-password": "cHc="}
    problems = kind_e2e.upgrade_problems(
        "e2e-agi-credit-auth",
        before,
        after,
        {"train-1": "u1"},
        {"train-1": "u2", "train-2": "u3"},  # replaced under the same name, and a new one
        {"train-1-x": "p1"},
        {"train-1-x": "p1", "train-2-y": "p2"},
    )
    assert problems == [
        "the Secret e2e-agi-credit-auth changed: JWT_SECRET",
        "new training Jobs: train-1, train-2",
        "new training pods: train-2-y",
    ]
    assert not any("bmV3" in p or "a2V5" in p for p in problems)  # keys, never values


class FakeCluster:
    """What check_noop_upgrade and credentials ask of a Cluster."""

    def __init__(self, secrets: list[dict[str, str]], jobs: list[list[str]]) -> None:
        self.secrets, self.jobs = secrets, jobs
        self.reads = 0

    def secret_data(self, name: str) -> dict[str, str]:
        assert name == "e2e-agi-credit-auth"
        self.reads += 1
        return self.secrets[min(self.reads - 1, len(self.secrets) - 1)]

    def secret_value(self, name: str, key: str) -> str:
        assert (name, key) == ("e2e-agi-credit-auth", "admin-password")
        return "generated-admin-password"

    def training_jobs(self) -> list[Any]:
        names = self.jobs.pop(0)
        return [SimpleNamespace(metadata=SimpleNamespace(name=n, uid=n + "-uid")) for n in names]

    def training_pods(self) -> list[Any]:
        return []

    @contextmanager
    def port_forward(self, port: int, timeout: float = 600) -> Iterator[int]:
        assert 0 < timeout <= 600
        yield 18000


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    installs: list[tuple[Any, ...]] = []
    monkeypatch.setattr(kind_e2e, "helm_install", lambda *a, **_: installs.append(a))
    monkeypatch.setattr(kind_e2e.time, "sleep", lambda _: None)
    return installs


def test_the_no_op_upgrade_passes_with_the_same_values_secret_login_and_jobs(
    no_wait: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    logins: list[tuple[int, str, str]] = []

    def login(*args: Any) -> None:
        logins.append(args)

    monkeypatch.setattr(kind_e2e, "login", login)
    secret = {"JWT_SECRET": "a2V5", "admin-password": "cHc="}
    cluster = FakeCluster([secret, dict(secret)], [["train-1"], ["train-1"]])
    kind_e2e.check_noop_upgrade("kserve", TAG, "kind-x", cluster, kind_e2e.Budget(600))
    assert no_wait == [tuple(kind_e2e.chart_arguments("kserve", TAG, "kind-x"))]
    assert logins == [(18000, "admin", "generated-admin-password")]


def test_the_no_op_upgrade_fails_naming_what_changed(
    no_wait: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kind_e2e, "login", lambda *_: "POST /login as admin: 401 unauthorized")
    cluster = FakeCluster([{"JWT_SECRET": "a"}, {"JWT_SECRET": "b"}], [["t-1"], ["t-1", "t-2"]])
    with pytest.raises(kind_e2e.ClusterError) as raised:
        kind_e2e.check_noop_upgrade("kserve", TAG, "kind-x", cluster, kind_e2e.Budget(600))
    message = str(raised.value)
    assert "the Secret e2e-agi-credit-auth changed: JWT_SECRET" in message
    assert "new training Jobs: t-2" in message
    assert "after the upgrade, POST /login as admin: 401" in message


def test_who_logs_in_in_each_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = FakeCluster([], [])
    assert kind_e2e.credentials("deployment", cluster) == ("ci", "ci-password-not-a-secret")
    assert kind_e2e.credentials("kustomize", cluster) == ("admin", "123456")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert kind_e2e.credentials("kserve", cluster) == ("admin", "generated-admin-password")
    assert "::add-mask::generated-admin-password" in capsys.readouterr().out
    assert kind_e2e.AUTH_SECRETS["kserve"] == f"{kind_e2e.RELEASE}-agi-credit-auth"


# --- diagnostics --------------------------------------------------------------------------


def test_diagnostic_sections_become_files_that_stay_in_their_directory(tmp_path: Path) -> None:
    sections = {
        "events-agi-credit": "e",
        "logs/e2e-abc/auth.previous": "p",
        "inferenceservices.yaml": "items: []",
        "../../escape/x y": "z",
        "helm/e2e-status": "s",
    }
    written = kind_e2e.write_sections(tmp_path, sections)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "events-agi-credit.log",
        "logs/e2e-abc/auth.previous.log",
        "inferenceservices.yaml",
        "escape/x_y.log",
        "helm/e2e-status.log",
    ]
    assert all(p.is_relative_to(tmp_path) for p in written)
    assert section_path(tmp_path, "").is_relative_to(tmp_path)


def test_a_failed_run_writes_its_diagnostics_even_without_a_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_cluster(*_: Any) -> Cluster:
        raise kind_e2e.ClusterError("no kubeconfig")

    monkeypatch.setattr(kind_e2e, "Cluster", no_cluster)
    monkeypatch.setattr(kind_e2e, "helm_sections", lambda *_: {"helm/e2e-status": "FAILED"})
    monkeypatch.setenv("KIND_E2E_LOGS", str(tmp_path / "logs"))
    kind_e2e.diagnose("deployment", "kind-x")
    assert "no kubeconfig" in (tmp_path / "logs" / "cluster.log").read_text()
    assert (tmp_path / "logs" / "helm" / "e2e-status.log").read_text() == "FAILED\n"
    assert "2 diagnostic files" in capsys.readouterr().out


@pytest.fixture
def steps_until_install(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """run() with no tools, images or cluster: what it called, diagnostics included."""
    called: list[str] = []

    def record(name: str) -> Any:
        def called_with(*_: Any) -> bool:
            called.append(name)
            return False

        return called_with

    for name in ("require_tools", "ensure_cluster", "load_images", "diagnose"):
        monkeypatch.setattr(kind_e2e, name, record(name))
    monkeypatch.setattr(kind_e2e, "build_images", lambda *_: TAG)
    monkeypatch.setattr(sys, "argv", ["scripts/kind_e2e.py"])
    monkeypatch.delenv("KIND_CLUSTER", raising=False)
    return called


def test_an_install_that_fails_is_diagnosed_and_said_with_its_step(
    steps_until_install: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def install(*_: Any) -> list[str]:
        raise failed("Error: INSTALLATION FAILED: context deadline exceeded")

    monkeypatch.setattr(kind_e2e, "install", install)
    monkeypatch.setenv("MODE", "kserve")
    with pytest.raises(SystemExit) as exited:
        kind_e2e.main()
    assert steps_until_install[-1] == "diagnose"
    assert "kind-e2e (kserve): FAILED during install (kserve)" in str(exited.value.code)


def test_an_install_that_runs_out_of_budget_says_so(
    steps_until_install: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    budget = kind_e2e.Budget(kind_e2e.BUDGET_SECONDS, clock=clock)
    monkeypatch.setattr(kind_e2e, "Budget", lambda _: budget)

    def install(*_: Any) -> list[str]:
        clock.now += kind_e2e.BUDGET_SECONDS  # helm --wait took all that was left
        raise failed("Error: INSTALLATION FAILED: context deadline exceeded")

    monkeypatch.setattr(kind_e2e, "install", install)
    monkeypatch.setenv("MODE", "deployment")
    with pytest.raises(SystemExit) as exited:
        kind_e2e.main()
    assert steps_until_install[-1] == "diagnose"
    message = str(exited.value.code)
    assert "FAILED: the time budget of 45 min" in message
    assert "exhausted during install (deployment)" in message


def test_a_cluster_that_cannot_be_created_is_not_diagnosed(
    steps_until_install: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def ensure_cluster(*_: Any) -> bool:
        raise failed("ERROR: failed to create cluster")

    monkeypatch.setattr(kind_e2e, "ensure_cluster", ensure_cluster)
    with pytest.raises(SystemExit, match="FAILED during kind cluster"):
        kind_e2e.main()
    assert "diagnose" not in steps_until_install


def pod(name: str, *statuses: client.V1ContainerStatus, init: bool = False) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, namespace="agi-credit"),
        status=client.V1PodStatus(
            phase="Pending",
            conditions=[
                client.V1PodCondition(type="Ready", status="False", reason="ContainersNotReady")
            ],
            init_container_statuses=list(statuses) if init else None,
            container_statuses=None if init else list(statuses),
        ),
    )


def status(name: str, restarts: int, **state: Any) -> client.V1ContainerStatus:
    return client.V1ContainerStatus(
        name=name,
        image="agi-credit-auth:" + TAG,
        image_id="",
        ready=False,
        restart_count=restarts,
        state=client.V1ContainerState(**state),
        last_state=client.V1ContainerState(
            terminated=client.V1ContainerStateTerminated(exit_code=1, reason="Error")
        )
        if restarts
        else None,
    )


def test_the_pod_summary_says_why_a_pod_is_not_ready() -> None:
    waiting = client.V1ContainerStateWaiting(reason="CrashLoopBackOff", message="back-off 20s")
    text = pod_summary([pod("e2e-0", status("wait-store", 3, waiting=waiting), init=True)])
    assert "pod/e2e-0 Pending [Ready=False (ContainersNotReady)]" in text
    assert "init wait-store: ready=False restarts=3 waiting (CrashLoopBackOff: back-off 20s)" in (
        text
    )
    assert "before: terminated (exit 1, Error)" in text


def test_the_logs_of_every_init_and_app_container_current_and_previous() -> None:
    logs: list[tuple[str, str | None, bool]] = []

    def read_namespaced_pod_log(pod: str, namespace: str, **kwargs: Any) -> str:
        logs.append((pod, kwargs["container"], kwargs["previous"]))
        if kwargs["container"] == "never-started":
            raise ApiException(status=400, reason="Bad Request")
        return f"{pod}/{kwargs['container']}{' (previous)' if kwargs['previous'] else ''}"

    cluster = Cluster.__new__(Cluster)
    cluster.namespace = "agi-credit"
    cluster.core = SimpleNamespace(read_namespaced_pod_log=read_namespaced_pod_log)  # type: ignore[assignment]
    waiting = client.V1ContainerStateWaiting(reason="PodInitializing")
    sections = cluster.pod_logs_sections(
        [
            pod("p", status("init-store", 2, waiting=waiting), init=True),
            pod("q", status("auth", 0), status("never-started", 0, waiting=waiting)),
        ]
    )
    assert sections == {
        "logs/p/init-store": "p/init-store",
        "logs/p/init-store.previous": "p/init-store (previous)",
        "logs/q/auth": "q/auth",
        "logs/q/never-started": "(no logs of q/never-started: Bad Request)",
    }
