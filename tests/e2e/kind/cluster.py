"""A namespace of a real Kubernetes cluster (kind in CI), through the `kubernetes` client:
waiting for Jobs and pods, jobs made from the training CronJob, Secrets, logs,
diagnostics (events, pods, every container's logs, KServe's InferenceServices and
controller), and a port-forward to the predictor pods' sidecar port.

Objects are found by the chart's labels (app.kubernetes.io/name=agi-credit and
app.kubernetes.io/component), so the same code serves the chart in both modes and k8s/.
"""

from __future__ import annotations

import base64
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

APP = "app.kubernetes.io/name=agi-credit"
PREDICTOR = f"{APP},app.kubernetes.io/component=predictor"
TRAINING = f"{APP},app.kubernetes.io/component=training"
# KServe, as kind_e2e.py installs it: its controller, and the InferenceService resource.
KSERVE_NAMESPACE = "kserve"
KSERVE_CONTROLLER = "kserve-controller-manager"
ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")
REQUEST_TIMEOUT = 30  # seconds, for each API call of the diagnostics
# Printed by the wrapper of run_job around a command's stdout, so that stdout comes back
# byte for byte (a .rds file, say) from pod logs, which mix stdout and stderr.
STDOUT_MARKER = "@@agi-credit-stdout@@"
_WRAPPER = (
    "import base64, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)\n"
    "sys.stderr.flush()\n"
    f"print({STDOUT_MARKER!r}, base64.b64encode(done.stdout).decode(), flush=True)\n"
    "sys.exit(done.returncode)\n"
)


def wrapped(argv: list[str]) -> list[str]:
    """The container command that runs `argv` and prints its stdout for `unwrap`."""
    return ["python", "-c", _WRAPPER, *argv]


def unwrap(logs: str) -> tuple[bytes, str]:
    """(the command's stdout, the rest of the logs) from the logs of a `wrapped` command."""
    stderr, _, rest = logs.partition(STDOUT_MARKER)
    encoded, _, stderr_after = rest.strip().partition("\n")
    return base64.b64decode(encoded.strip()), stderr + stderr_after


class ClusterError(AssertionError):
    """Something in the cluster did not happen in time, or failed."""


def unreachable_reason(context: str | None = None) -> str | None:
    """None when a cluster answers with this kubeconfig context, else why not."""
    try:
        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
        client.VersionApi().get_code(_request_timeout=5)
    except Exception as error:  # any failure means the same to the caller: no cluster
        return f"no Kubernetes cluster reachable (context {context or 'current'}): {error}"
    return None


def name_of(obj: Any) -> str:
    """metadata.name of an object read from the API (always set there)."""
    assert obj.metadata is not None and obj.metadata.name, obj
    return str(obj.metadata.name)


def uids(objects: list[Any]) -> dict[str, str]:
    """{name: uid} of objects read from the API: a name reused by a new object shows."""
    return {name_of(o): str(o.metadata.uid) for o in objects}


class Cluster:
    """One namespace of the cluster of a kubeconfig context."""

    def __init__(self, namespace: str, context: str | None = None) -> None:
        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
        self.namespace = namespace
        self.core = client.CoreV1Api()
        self.batch = client.BatchV1Api()
        self.apps = client.AppsV1Api()
        self.custom = client.CustomObjectsApi()

    # --- waiting ------------------------------------------------------------------------

    def wait_job(self, name: str, timeout: float = 900) -> None:
        """Until the Job has succeeded; ClusterError with its logs when it fails or hangs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.batch.read_namespaced_job_status(name, self.namespace).status
            if status is not None and status.succeeded:
                return
            conditions = (status.conditions if status is not None else None) or []
            failed = [c for c in conditions if c.type == "Failed" and c.status == "True"]
            if failed:
                raise ClusterError(f"job {name} failed: {failed[0].message}\n{self.job_logs(name)}")
            time.sleep(2)
        raise ClusterError(f"job {name} did not finish in {timeout:.0f} s\n{self.job_logs(name)}")

    def training_jobs(self) -> list[client.V1Job]:
        return list(self.batch.list_namespaced_job(self.namespace, label_selector=TRAINING).items)

    def training_pods(self) -> list[client.V1Pod]:
        """The pods of every training Job (the first one, retrains, `run_job` commands)."""
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=TRAINING)
        return list(pods.items)

    def wait_ready_pods(self, selector: str = PREDICTOR, timeout: float = 600) -> list[str]:
        """Names of the pods matching `selector`, once at least one exists and all are ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
            running = [
                p for p in pods if p.metadata is None or p.metadata.deletion_timestamp is None
            ]
            if running and all(_ready(p) for p in running):
                return [name_of(p) for p in running]
            time.sleep(2)
        raise ClusterError(f"no ready pods for {selector} in {timeout:.0f} s")

    # --- secrets ------------------------------------------------------------------------

    def secret_data(self, name: str) -> dict[str, str]:
        """The Secret's data as stored (base64 values): to compare two reads of it."""
        try:
            secret = self.core.read_namespaced_secret(name, self.namespace)
        except ApiException as error:
            raise ClusterError(f"secret {self.namespace}/{name}: {error.reason}") from error
        return {key: str(value) for key, value in (secret.data or {}).items()}

    def secret_value(self, name: str, key: str) -> str:
        """One key of the Secret, decoded."""
        data = self.secret_data(name)
        if key not in data:
            raise ClusterError(f"secret {self.namespace}/{name} has no key {key} ({sorted(data)})")
        return base64.b64decode(data[key]).decode()

    # --- jobs ---------------------------------------------------------------------------

    def training_cronjob(self) -> client.V1CronJob:
        found = self.batch.list_namespaced_cron_job(self.namespace, label_selector=TRAINING).items
        if len(found) != 1:
            raise ClusterError(f"{len(found)} training CronJobs in {self.namespace}")
        return found[0]

    def create_job_from_cronjob(self, name: str) -> None:
        """What `kubectl create job NAME --from=cronjob/<training CronJob>` does."""
        cronjob = self.training_cronjob()
        assert cronjob.spec is not None
        template = cronjob.spec.job_template
        self.batch.create_namespaced_job(
            self.namespace,
            client.V1Job(
                metadata=client.V1ObjectMeta(
                    name=name,
                    labels=template.metadata.labels if template.metadata else None,
                    annotations={"cronjob.kubernetes.io/instantiate": "manual"},
                    owner_references=[
                        client.V1OwnerReference(
                            api_version="batch/v1",
                            kind="CronJob",
                            name=name_of(cronjob),
                            uid=str(cronjob.metadata.uid if cronjob.metadata else ""),
                            controller=True,
                        )
                    ],
                ),
                spec=template.spec,
            ),
        )

    def run(
        self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 900
    ) -> tuple[int, bytes, str]:
        """`argv` in a pod of the training CronJob's template (the store mounted read-write):
        (exit status, its stdout, its stderr)."""
        cronjob = self.training_cronjob()
        assert cronjob.spec is not None and cronjob.spec.job_template.spec is not None
        template = cronjob.spec.job_template.spec
        assert template.template.spec is not None
        container = template.template.spec.containers[0]
        container.command = wrapped(argv)
        container.args = []
        container.env = [e for e in container.env or [] if e.name not in (env or {})]
        container.env += [client.V1EnvVar(name=k, value=v) for k, v in (env or {}).items()]
        template.backoff_limit = 0
        template.ttl_seconds_after_finished = 600
        job = self.batch.create_namespaced_job(
            self.namespace,
            client.V1Job(
                metadata=client.V1ObjectMeta(
                    generate_name="agi-credit-run-",
                    labels={"app.kubernetes.io/name": "agi-credit", "agi-credit/e2e": "run"},
                ),
                spec=template,
            ),
        )
        name = name_of(job)
        status = 0
        try:
            self.wait_job(name, timeout)
        except ClusterError:
            status = 1
        stdout, stderr = unwrap(self.job_logs(name))
        return status, stdout, stderr

    # --- logs ---------------------------------------------------------------------------

    def job_logs(self, name: str) -> str:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={name}")
        return "\n".join(self.pod_logs(name_of(p)) for p in pods.items)

    def pod_logs(
        self,
        pod: str,
        container: str | None = None,
        previous: bool = False,
        namespace: str | None = None,
    ) -> str:
        try:
            return str(
                self.core.read_namespaced_pod_log(
                    pod,
                    namespace or self.namespace,
                    container=container,
                    previous=previous,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as error:
            return f"(no logs of {pod}/{container}: {error.reason})"
        except Exception as error:  # a timeout, a dropped connection: logs are best effort
            return f"(no logs of {pod}/{container}: {error})"

    # --- diagnostics --------------------------------------------------------------------

    def events(self, namespace: str | None = None) -> str:
        """The namespace's events, oldest first, one a line."""
        items = self.core.list_namespaced_event(
            namespace or self.namespace, _request_timeout=REQUEST_TIMEOUT
        ).items
        lines = []
        for event in sorted(items, key=lambda e: str(e.last_timestamp or e.event_time or "")):
            obj = event.involved_object
            lines.append(
                f"{event.last_timestamp or event.event_time} {event.type} {obj.kind}/{obj.name}: "
                f"{event.reason}: {event.message}"
            )
        return "\n".join(lines) or "(no events)"

    def pod_logs_sections(self, pods: list[client.V1Pod], prefix: str = "logs") -> dict[str, str]:
        """{"<prefix>/<pod>/<container>": logs} for every init and app container of `pods`,
        and "...previous" for the run before a restart (or before a failed init container)."""
        sections: dict[str, str] = {}
        for pod in pods:
            name = name_of(pod)
            namespace = pod.metadata.namespace if pod.metadata else None
            status = pod.status
            statuses = [
                *((status.init_container_statuses or []) if status else []),
                *((status.container_statuses or []) if status else []),
            ]
            for container in statuses:
                key = f"{prefix}/{name}/{container.name}"
                sections[key] = self.pod_logs(name, container.name, namespace=namespace)
                if container.restart_count or (
                    container.last_state and container.last_state.terminated
                ):
                    sections[f"{key}.previous"] = self.pod_logs(
                        name, container.name, previous=True, namespace=namespace
                    )
        return sections

    def deployment_pods(self, namespace: str, name: str) -> list[client.V1Pod]:
        """The pods of a Deployment, by its selector."""
        deployment = self.apps.read_namespaced_deployment(
            name, namespace, _request_timeout=REQUEST_TIMEOUT
        )
        assert deployment.spec is not None
        labels = deployment.spec.selector.match_labels or {}
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        pods = self.core.list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
        )
        return list(pods.items)

    def inference_services(self) -> str:
        """`kubectl get inferenceservices -o yaml` of the namespace."""
        group, version, plural = ISVC
        found = self.custom.list_namespaced_custom_object(
            group, version, self.namespace, plural, _request_timeout=REQUEST_TIMEOUT
        )
        return yaml.safe_dump(found, sort_keys=False)

    def diagnostic_sections(self, kserve: bool = False) -> dict[str, str]:
        """For a failed run, by name: events, pods and their states, every init and app
        container's logs (current and previous); with `kserve`, the InferenceServices as YAML,
        KServe's events and its controller's pods and logs. What cannot be read says why."""
        sections: dict[str, str] = {}

        def add(name: str, read: Callable[[], str]) -> None:
            try:
                sections[name] = read()
            except Exception as error:  # the diagnostics go on: say what could not be read
                sections[name] = f"(could not read {name}: {error})"

        def pods_of(namespace: str, deployment: str | None = None) -> list[client.V1Pod]:
            try:
                if deployment:
                    return self.deployment_pods(namespace, deployment)
                found = self.core.list_namespaced_pod(namespace, _request_timeout=REQUEST_TIMEOUT)
                return list(found.items)
            except Exception as error:
                sections[f"pods-{deployment or namespace}"] = f"(could not list pods: {error})"
                return []

        add(f"events-{self.namespace}", self.events)
        pods = pods_of(self.namespace)
        add(f"pods-{self.namespace}", lambda: pod_summary(pods))
        sections.update(self.pod_logs_sections(pods))
        if kserve:
            add("inferenceservices.yaml", self.inference_services)
            add(f"events-{KSERVE_NAMESPACE}", lambda: self.events(KSERVE_NAMESPACE))
            controller = pods_of(KSERVE_NAMESPACE, KSERVE_CONTROLLER)
            add(f"pods-{KSERVE_CONTROLLER}", lambda: pod_summary(controller))
            sections.update(self.pod_logs_sections(controller, KSERVE_CONTROLLER))
        return sections

    def diagnostics(self, kserve: bool = False) -> str:
        """`diagnostic_sections` as one text, a `== name` line before each part."""
        parts = self.diagnostic_sections(kserve)
        return "\n".join(f"== {name}\n{text}" for name, text in parts.items())

    # --- port-forward -------------------------------------------------------------------

    @contextmanager
    def port_forward(
        self, port: int, selector: str = PREDICTOR, timeout: float = 600
    ) -> Iterator[int]:
        """A local port on 127.0.0.1 forwarded to `port` of a ready pod matching `selector`
        (a Service's endpoints, as `kubectl port-forward svc/...` picks one, waiting up to
        `timeout` seconds for one); yields it."""
        pod = self.wait_ready_pods(selector, timeout)[0]
        api = self.core
        namespace = self.namespace

        class Relay(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                forward = portforward(
                    api.connect_get_namespaced_pod_portforward,
                    pod,
                    namespace,
                    ports=str(port),
                )
                remote = forward.socket(port)
                remote.setblocking(True)
                _pump_both_ways(self.request, remote)
                forward.close()

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Relay)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield int(server.server_address[1])
        finally:
            server.shutdown()
            server.server_close()


def container_state(state: Any) -> str:
    """A container state as `kubectl describe` would say it, on one line."""
    if state is None:
        return "-"
    if state.running:
        return f"running since {state.running.started_at}"
    if state.waiting:
        why = ": ".join(str(p) for p in (state.waiting.reason, state.waiting.message) if p)
        return f"waiting ({why})"
    if state.terminated:
        done = state.terminated
        why = ": ".join(str(p) for p in (done.reason, done.message) if p)
        return f"terminated (exit {done.exit_code}, {why})"
    return "-"


def pod_summary(pods: list[client.V1Pod]) -> str:
    """Each pod's phase and conditions, then each init and app container's state, restarts
    and the state before its last restart: why a pod is not ready, at a glance."""
    lines = []
    for pod in pods:
        status = pod.status
        conditions = ", ".join(
            f"{c.type}={c.status}" + (f" ({c.reason})" if c.reason else "")
            for c in (status.conditions or [] if status else [])
        )
        lines.append(f"pod/{name_of(pod)} {status.phase if status else '?'} [{conditions}]")
        for kind, statuses in (
            ("init", status.init_container_statuses if status else None),
            ("container", status.container_statuses if status else None),
        ):
            for c in statuses or []:
                lines.append(
                    f"  {kind} {c.name}: ready={c.ready} restarts={c.restart_count} "
                    f"{container_state(c.state)}; before: {container_state(c.last_state)}"
                )
    return "\n".join(lines) or "(no pods)"


def section_path(directory: Path, name: str) -> Path:
    """Where a diagnostic section is written: under `directory`, its name's parts made safe,
    with .log unless the name ends in .yaml or .log."""
    parts = [re.sub(r"[^A-Za-z0-9._-]", "_", p) for p in name.split("/")]
    path = directory.joinpath(*[p for p in parts if p.strip(".")] or ["_"])
    return path if path.suffix in (".yaml", ".log") else path.with_name(path.name + ".log")


def _ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _pump_both_ways(local: socket.socket, remote: Any) -> None:
    """Copy bytes both ways until either side closes."""

    def copy(source: Any, target: Any) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    other = threading.Thread(target=copy, args=(remote, local), daemon=True)
    other.start()
    copy(local, remote)
    other.join()
