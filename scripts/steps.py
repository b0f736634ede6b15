"""Timed steps and commands for the scripts that drive a whole run (test_containers.py,
kind_e2e.py): each step prints its name and duration, each command itself."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
timings: list[tuple[str, float]] = []


@contextmanager
def step(name: str) -> Iterator[None]:
    print(f"\n== {name}", flush=True)
    started = time.monotonic()
    try:
        yield
    finally:
        timings.append((name, time.monotonic() - started))
        print(f"== {name}: {timings[-1][1]:.1f} s", flush=True)


def sh(*argv: str | Path, capture: bool = False, env: dict[str, str] | None = None) -> str:
    """Run `argv` in the repository (raising when it fails); its stdout when `capture`."""
    print("$", shlex.join(str(a) for a in argv), flush=True)
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=REPO,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        env={**os.environ, **(env or {})},
    )
    return done.stdout or ""


def print_timings(title: str) -> None:
    print(f"\n{title}: passed")
    for name, seconds in timings:
        print(f"  {name:52} {seconds:7.1f} s")
