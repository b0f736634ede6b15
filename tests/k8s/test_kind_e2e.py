"""The plumbing of `make kind-e2e` that runs without a cluster: the command wrapper that
brings a Job's stdout back byte for byte, the port-forward's byte pump, and the gating of
tests/e2e/kind (not collected without a cluster to name; skipped, with the reason, when the
named cluster does not answer)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading

import argon2
import pytest

from tests.chart.chart import (
    KUBERNETES_VERSIONS,
    REPO,
    Rendered,
    all_containers,
    load_values,
    merged,
    pods_of,
    validate,
)
from tests.e2e.kind.cluster import _pump_both_ways, unwrap, wrapped
from tests.k8s.scripts import script
from tests.servers import clean_env


def test_a_wrapped_command_gives_back_its_stdout_byte_for_byte_and_its_status() -> None:
    payload = bytes(range(256)) * 3  # an .rds is binary: every byte value, newlines too
    code = (
        "import sys; sys.stderr.write('training...\\n'); sys.stderr.flush(); "
        f"sys.stdout.buffer.write({payload!r}); sys.exit(3)"
    )
    argv = wrapped([sys.executable, "-c", code])
    argv[0] = sys.executable  # the image's `python`
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    # pod logs interleave both streams: give them as one text
    stdout, stderr = unwrap(done.stderr + done.stdout)
    assert done.returncode == 3
    assert stdout == payload
    assert stderr.strip() == "training..."


def test_the_port_forward_pump_carries_both_directions_until_either_side_closes() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    pod_side, pod = socket.socketpair()  # what PortForward.socket(port) gives

    def echo_pod() -> None:
        while data := pod.recv(65536):
            pod.sendall(data.upper())
        pod.close()

    def relay() -> None:
        local, _ = listener.accept()
        _pump_both_ways(local, pod_side)
        local.close()

    threads = [threading.Thread(target=f, daemon=True) for f in (echo_pod, relay)]
    for thread in threads:
        thread.start()
    with socket.create_connection(listener.getsockname(), timeout=5) as client:
        client.sendall(b"x" * 200_000)
        received = b""
        while len(received) < 200_000:
            received += client.recv(65536)
        assert received == b"X" * 200_000
        client.shutdown(socket.SHUT_WR)
        assert client.recv(10) == b""  # closed through the pump
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive()
    pod_side.close()  # PortForward.close() does it in the relay
    listener.close()


def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env=clean_env({"KUBECONFIG": str(REPO / "build" / "no-such-kubeconfig")}),
        timeout=300,
    )


def test_the_cluster_tests_are_not_collected_without_a_cluster_to_name() -> None:
    done = pytest_run("--collect-only", "-q", "tests/e2e/kind")
    assert "no tests collected" in done.stdout, done.stdout + done.stderr


def test_the_cluster_tests_skip_with_the_reason_when_no_cluster_answers() -> None:
    done = pytest_run(
        "tests/e2e/kind/test_cluster.py::test_the_first_training_job_completed",
        "-rs",
        "--stack-url=http://127.0.0.1:9",
        "--stack-run=true",
        "--kind-namespace=agi-credit",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert "no Kubernetes cluster reachable" in done.stdout


@pytest.mark.parametrize("mode", ["deployment", "kserve"])
def test_what_kind_e2e_installs_renders_and_validates(mode: str) -> None:
    kind_e2e = script("kind_e2e")
    values = load_values(kind_e2e.CHART_VALUES[mode])
    overrides = kind_e2e.chart_overrides("20261126-abc1234")
    rendered = Rendered.of(mode, merged(values, overrides))
    for obj in rendered.objects:
        validate(obj, KUBERNETES_VERSIONS[-1])
    assert rendered.one("CronJob")["spec"]["suspend"] is True
    images = {c["image"] for _, pod in pods_of(rendered.objects) for c in all_containers(pod)}
    assert images and all(i.endswith(":20261126-abc1234") for i in images), images
    assert "--set-string" in kind_e2e.set_arguments(overrides)


def test_the_user_kind_e2e_logs_in_as_is_in_the_deployment_values() -> None:
    """Deployment mode logs in as the CI user of its existingSecret; kserve mode as the
    `admin` the chart generates (its values give no users)."""
    kind_e2e = script("kind_e2e")
    text = kind_e2e.CHART_VALUES["deployment"].read_text(encoding="utf-8")
    hashes = re.findall(r'"(\$argon2id\$[^"]+)"', text)
    assert hashes
    assert argon2.PasswordHasher().verify(hashes[0], kind_e2e.CI_PASSWORD)
    assert f"username: {kind_e2e.CI_USER}" in text
    assert "auth" not in load_values(kind_e2e.CHART_VALUES["kserve"])
