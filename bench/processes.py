"""agi-credit as processes for the benchmarks (`bench/soak.py`, `bench/large_request.py`): the
CLI run to the end, the predictor and the sidecar started until ready, on free loopback ports.

Every process gets a clean environment (`clean_env`); any failure ends the benchmark with the
process's output (`sys.exit`). Imports neither agi_credit nor kserve: soak's client processes
load this module too. The tests have their own (tests/servers.py), which fail a test instead.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "VIRTUAL_ENV", "R_HOME")
READY_SECONDS = 120


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The system's basics, none of agi-credit's settings from the caller, then `extra`."""
    base = {k: v for k, v in os.environ.items() if k in _INHERITED}
    train_r = str(REPO / "training-job" / "train.R")
    return {**base, "TZ": "UTC", "TRAIN_SCRIPT": train_r, **(extra or {})}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agi(work: Path, *args: str | Path, env: dict[str, str] | None = None, stdin: str = "") -> str:
    """`agi-credit ARGS` to the end; exits the benchmark with its output when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "agi_credit", *map(str, args)],
        cwd=work,
        env=clean_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"agi-credit {' '.join(map(str, args))} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@contextmanager
def started(
    work: Path, name: str, args: list[str], ready_url: str, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """`agi-credit ARGS` in the background, its output in WORK/NAME.log, until `ready_url`
    answers 200 (exits the benchmark if it dies or is not ready in READY_SECONDS); stopped
    afterwards."""
    log = work / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agi_credit", *args],
            cwd=work,
            env=clean_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not answers(ready_url):
            if proc.poll() is not None:
                sys.exit(f"{name} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                sys.exit(f"{name} not ready in {READY_SECONDS} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc)


def memory_kib(pid: int) -> dict[str, int]:
    """A process's resident memory now (VmRSS) and at its peak (VmHWM), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {name: int(kib) for name, kib in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}


def answers(url: str) -> bool:
    """Whether `url` answers 200 now."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 20 s; nothing if it has already exited."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
