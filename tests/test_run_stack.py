"""`make run` (scripts/run-stack.sh): data, a first model, the predictor and the sidecar; the
curl it prints works; Ctrl-C stops both servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.servers import REPO, clean_env, free_port, triton_grpc


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_stack_comes_up_answers_its_own_tour_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    names = ("HTTP_PORT", "GRPC_PORT", "AUTH_PORT", "AUTH_GRPC_PORT")
    ports = {name: free_port() for name in names}
    env = {
        **clean_env(),
        **{k: str(v) for k, v in ports.items()},
        "DATA_PATH": str(tmp_path / "data" / "application_train.csv"),
        "MODEL_STORE": str(tmp_path / "store"),
        "SYNTHETIC_ROWS": "5000",
        "MIN_AUC": "0",
        "ENV": "dev",
        "USERS_FILE": "",
        "JWT_SECRET": "",
    }
    stack = subprocess.Popen(
        ["bash", "scripts/run-stack.sh"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(stack.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not any(line.startswith("TOKEN=") or "Bearer" in line for line in lines[-40:]):
            assert stack.poll() is None, "".join(lines[-40:])
            assert time.monotonic() < deadline, "".join(lines[-40:])
            time.sleep(0.2)
        time.sleep(0.5)
        start = next(i for i, line in enumerate(lines) if "agi-credit is up" in line)
        tour = "".join(line for line in lines[start:] if line.startswith("  "))
        answer = subprocess.run(["bash", "-c", tour], capture_output=True, text=True, timeout=60)
        assert answer.returncode == 0, answer.stderr
        prediction = json.loads(answer.stdout)
        assert prediction["model_version"] == "v1" and 0 < prediction["prob_default"] < 1
        assert (tmp_path / "data" / "application_train.csv").is_file()
        assert _listening(ports["HTTP_PORT"]) and _listening(ports["AUTH_PORT"])
        # gRPC through the sidecar reaches the predictor on its GRPC_PORT, whatever it is
        login = {"username": "admin", "password": "123456"}
        token = httpx.post(f"http://127.0.0.1:{ports['AUTH_PORT']}/login", json=login).json()
        [ready] = triton_grpc(
            f"127.0.0.1:{ports['AUTH_GRPC_PORT']}",
            [{"method": "model_ready", "authorization": f"Bearer {token['token']}"}],
        )
        assert ready == {"ok": True, "result": True}, ready
    finally:
        os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C sends: the whole process group
        stack.wait(timeout=60)
        reader.join(timeout=10)
        assert stack.stdout is not None
        stack.stdout.close()
    deadline = time.monotonic() + 10
    while any(_listening(port) for port in ports.values()):
        assert time.monotonic() < deadline, "a server outlived Ctrl-C"
        time.sleep(0.2)
