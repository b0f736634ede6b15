"""`make test-containers`: the three images, the compose stack and the chart's pods.

Installs and starts a Docker engine if there is none, builds the base image if no registry
can give it, builds the images, validates docker-compose.yml, starts the stack on the host's
loopback (docker-compose.test.yml), runs tests/e2e through the auth service, checks that
only auth publishes a port, and takes the stack down, asserting that nothing is left. Then
runs the Helm chart's training and predictor pods with podman and tests/e2e through them
(scripts/chart_pods.py), and the same with the pod KServe v0.20.0 would make of the chart's
InferenceService (emulated: tests/chart/kserve_v0_20.py), through its Service's ports.
Prints how long each step took.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import chart_pods
import yaml
from chart_pods import free_port
from steps import print_timings, sh, step

REPO = Path(__file__).resolve().parents[1]
PROJECT = "agi-credit-e2e"


def compose_command() -> list[str]:
    """Compose v2 (`docker compose`) when it is there, else Debian's docker-compose 1.29."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if v2.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    sys.exit("neither `docker compose` nor `docker-compose` is installed")


def leftovers() -> dict[str, str]:
    label = f"label=com.docker.compose.project={PROJECT}"
    return {
        kind: out
        for kind, argv in {
            "containers": ["docker", "ps", "-aq", "--filter", label],
            "networks": ["docker", "network", "ls", "-q", "--filter", label],
            "volumes": ["docker", "volume", "ls", "-q", "--filter", label],
        }.items()
        if (out := sh(*argv, capture=True).strip())
    }


def main() -> None:
    with step("docker engine"):
        sh("scripts/ensure-docker.sh")
    with step("base image"):
        sh("scripts/base-image.sh")
    tag_file = Path(tempfile.mkdtemp()) / "tag"
    with step("images"):
        sh("make", "--no-print-directory", "images", env={"TAG_FILE": str(tag_file)})
    tag = tag_file.read_text().strip()
    compose = compose_command()

    with step("compose files"):
        for tool in (["docker", "compose"], ["docker-compose"]):  # Compose v2 and v1.29
            sh(*tool, "-f", "docker-compose.yml", "config", "-q")
            print(f"docker-compose.yml is valid for {' '.join(tool)}")
        config = yaml.safe_load(sh(*compose, "-f", "docker-compose.yml", "config", capture=True))
        publishing = sorted(n for n, s in config["services"].items() if s.get("ports"))
        assert publishing == ["auth"], f"services that publish ports: {publishing}"

    auth_port, auth_grpc_port = free_port(), free_port()
    settings = {
        "ENV": "dev",  # admin/123456 for the test only
        "JWT_SECRET": secrets.token_hex(32),
        "SYNTHETIC_ROWS": "20000",
        "MIN_AUC": "0",
        "AUTH_PORT": str(auth_port),
        "STACK_AUTH_PORT": str(auth_port),
        "AUTH_GRPC_PORT": str(auth_grpc_port),
        "STACK_AUTH_GRPC_PORT": str(auth_grpc_port),
        "STACK_PREDICTOR_PORT": str(free_port()),
        "STACK_PREDICTOR_GRPC_PORT": str(free_port()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / "stack.env"  # not the developer's .env
        env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        stack = [*compose, "-p", PROJECT, "--env-file", str(env_file)]
        stack += ["-f", "docker-compose.yml", "-f", "docker-compose.test.yml"]
        url = f"http://127.0.0.1:{auth_port}"
        try:
            with step("stack up --build (cached), first training, then ready"):
                # `up --build` as a user runs it; the extra CA (docker-compose.build.yml) is
                # what pip inside the builds needs on this machine.
                sh(*stack, "-f", "docker-compose.build.yml", "up", "-d", "--build")
                chart_pods.wait_ready(f"{url}/ready", timeout=600)
            with step("end-to-end tests through auth"):
                run = " ".join([*stack, "run", "--rm", "-T", "--entrypoint", "env", "training"])
                sh(
                    REPO / ".venv/bin/pytest",
                    "tests/e2e",
                    "-p",
                    "no:cacheprovider",
                    f"--stack-url={url}",
                    f"--stack-grpc=127.0.0.1:{auth_grpc_port}",
                    f"--stack-run={run}",
                )
            with step("published ports"):
                for container in sh(*stack, "ps", "-aq", capture=True).split():
                    name = sh("docker", "inspect", "-f", "{{.Name}}", container, capture=True)
                    ports = sh("docker", "port", container, capture=True).strip()
                    assert not ports or "auth" in name, f"{name.strip()} publishes {ports}"
        finally:
            with step("stack down"):
                sh(*stack, "logs", "--no-color", "--tail", "40")
                sh(*stack, "--profile", "tools", "down", "-v", "--remove-orphans")
    left = leftovers()
    assert not left, f"left behind by down -v: {left}"

    with step("podman"):
        sh("scripts/ensure-podman.sh")
    with step("the chart's pods with podman: training pod, predictor pod, e2e"):
        chart_pods.run(tag, free_port(), free_port())
    with step("the emulated KServe pod with podman: e2e through its Service port"):
        chart_pods.run_kserve(tag, free_port(), free_port())
    print_timings("test-containers")


if __name__ == "__main__":
    main()
