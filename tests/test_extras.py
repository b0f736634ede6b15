"""Each component installs from its own extra: the auth sidecar runs without R, rpy2,
kserve, numpy or matplotlib (its container image carries none of them)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import REPO, WORKDIR, clean_env, free_port

ABSENT_FROM_AUTH = ("rpy2", "kserve", "numpy", "pandas", "pyarrow", "matplotlib")


@pytest.fixture(scope="module")
def auth_only_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the project's wheel and only the `auth` extra, pinned as in dev."""
    work = tmp_path_factory.mktemp("auth-venv")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", work, REPO],
        check=True,
        cwd=WORKDIR,
    )
    (wheel,) = work.glob("agi_credit-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run(
        [
            venv / "bin" / "pip",
            "install",
            "--quiet",
            "-c",
            REPO / "constraints.txt",
            f"{wheel}[auth]",
        ],
        check=True,
        cwd=WORKDIR,
        timeout=600,
    )
    yield venv


@pytest.mark.slow
def test_the_auth_extra_holds_none_of_the_heavy_dependencies(auth_only_venv: Path) -> None:
    probe = (
        f"import importlib.util as u; print([m for m in {ABSENT_FROM_AUTH!r} if u.find_spec(m)])"
    )
    found = subprocess.run(
        [auth_only_venv / "bin" / "python", "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_sidecar_starts_with_only_its_extra(auth_only_venv: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "auth.log"
    with log.open("wb") as out:
        command = [auth_only_venv / "bin" / "agi-credit", "auth", "--port", str(port)]
        command += ["--grpc-port", str(free_port())]  # grpcio comes with the extra
        sidecar = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=WORKDIR,
            env=clean_env({"ENV": "dev", "PREDICTOR_URL": "http://127.0.0.1:9"}),
        )
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/health", sidecar, log)
        login = httpx.post(
            f"http://127.0.0.1:{port}/login", json={"username": "admin", "password": "123456"}
        )
        ready = httpx.get(f"http://127.0.0.1:{port}/ready")
    finally:
        sidecar.terminate()
        sidecar.wait(timeout=20)
    assert health.json() == {"status": "ok"}
    assert login.status_code == 200 and login.json()["token"]
    assert ready.status_code == 503  # no predictor behind it


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    for _ in range(300):
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            subprocess.run(["sleep", "0.1"], check=True)
    raise AssertionError(f"{url} did not answer:\n" + log.read_text(errors="replace"))
