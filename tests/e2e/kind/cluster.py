"""A namespace of a real Kubernetes cluster (kind in CI), through the `kubernetes` client:
waiting for Jobs and pods, jobs made from the training CronJob, logs, diagnostics, and a
port-forward to the predictor pods' sidecar port.

Objects are found by the chart's labels (app.kubernetes.io/name=agi-credit and
app.kubernetes.io/component), so the same code serves the chart in both modes and k8s/.
"""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

APP = "app.kubernetes.io/name=agi-credit"
PREDICTOR = f"{APP},app.kubernetes.io/component=predictor"
TRAINING = f"{APP},app.kubernetes.io/component=training"
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
        config.load_kube_config(context=context)
        client.VersionApi().get_code(_request_timeout=5)
    except Exception as error:  # any failure means the same to the caller: no cluster
        return f"no Kubernetes cluster reachable (context {context or 'current'}): {error}"
    return None


class Cluster:
    """One namespace of the cluster of a kubeconfig context."""

    def __init__(self, namespace: str, context: str | None = None) -> None:
        config.load_kube_config(context=context)
        self.namespace = namespace
        self.core = client.CoreV1Api()
        self.batch = client.BatchV1Api()

    # --- waiting ------------------------------------------------------------------------

    def wait_job(self, name: str, timeout: float = 900) -> None:
        """Until the Job has succeeded; ClusterError with its logs when it fails or hangs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.batch.read_namespaced_job_status(name, self.namespace).status
            if status.succeeded:
                return
            failed = [
                c for c in status.conditions or [] if c.type == "Failed" and c.status == "True"
            ]
            if failed:
                raise ClusterError(f"job {name} failed: {failed[0].message}\n{self.job_logs(name)}")
            time.sleep(2)
        raise ClusterError(f"job {name} did not finish in {timeout:.0f} s\n{self.job_logs(name)}")

    def training_jobs(self) -> list[client.V1Job]:
        return list(self.batch.list_namespaced_job(self.namespace, label_selector=TRAINING).items)

    def wait_ready_pods(self, selector: str = PREDICTOR, timeout: float = 600) -> list[str]:
        """Names of the pods matching `selector`, once at least one exists and all are ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
            running = [p for p in pods if p.metadata.deletion_timestamp is None]
            if running and all(_ready(p) for p in running):
                return [p.metadata.name for p in running]
            time.sleep(2)
        raise ClusterError(f"no ready pods for {selector} in {timeout:.0f} s")

    # --- jobs ---------------------------------------------------------------------------

    def training_cronjob(self) -> client.V1CronJob:
        found = self.batch.list_namespaced_cron_job(self.namespace, label_selector=TRAINING).items
        if len(found) != 1:
            raise ClusterError(f"{len(found)} training CronJobs in {self.namespace}")
        return found[0]

    def create_job_from_cronjob(self, name: str) -> None:
        """What `kubectl create job NAME --from=cronjob/<training CronJob>` does."""
        cronjob = self.training_cronjob()
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
                            name=cronjob.metadata.name,
                            uid=cronjob.metadata.uid,
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
        template = self.training_cronjob().spec.job_template.spec
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
        name = job.metadata.name
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
        return "\n".join(self.pod_logs(p.metadata.name) for p in pods.items)

    def pod_logs(self, pod: str, container: str | None = None, previous: bool = False) -> str:
        try:
            return str(
                self.core.read_namespaced_pod_log(
                    pod, self.namespace, container=container, previous=previous
                )
            )
        except ApiException as error:
            return f"(no logs of {pod}/{container}: {error.reason})"

    def diagnostics(self) -> str:
        """Events, then every container's logs (and its previous run's): for a failed run."""
        lines = [f"== events in {self.namespace}"]
        events = self.core.list_namespaced_event(self.namespace).items
        for event in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or "")):
            obj = event.involved_object
            lines.append(
                f"{event.last_timestamp} {event.type} {obj.kind}/{obj.name}: "
                f"{event.reason}: {event.message}"
            )
        for pod in self.core.list_namespaced_pod(self.namespace).items:
            for status in pod.status.container_statuses or []:
                lines.append(f"== logs of {pod.metadata.name}/{status.name}")
                lines.append(self.pod_logs(pod.metadata.name, status.name))
                if status.restart_count:
                    lines.append(f"== previous logs of {pod.metadata.name}/{status.name}")
                    lines.append(self.pod_logs(pod.metadata.name, status.name, previous=True))
        return "\n".join(lines)

    # --- port-forward -------------------------------------------------------------------

    @contextmanager
    def port_forward(self, port: int, selector: str = PREDICTOR) -> Iterator[int]:
        """A local port on 127.0.0.1 forwarded to `port` of a ready pod matching `selector`
        (a Service's endpoints, as `kubectl port-forward svc/...` picks one); yields it."""
        pod = self.wait_ready_pods(selector)[0]
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


def _ready(pod: Any) -> bool:
    conditions = pod.status.conditions or []
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
