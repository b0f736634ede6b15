"""Filesystems made for a test: read-only, or small enough to fill (both need root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, *, size: str = "8m") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `path` (created if needed) holding `path`'s content."""
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root (CI runs as root)")
    saved = Path(tempfile.mkdtemp()) / "saved"
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(path, saved)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        shutil.copytree(saved, path, dirs_exist_ok=True)
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)  # even with files open
        shutil.rmtree(saved.parent)


@contextmanager
def read_only_mount(path: Path) -> Iterator[None]:
    """Make `path` a read-only filesystem holding its current content."""
    with tmpfs(path):
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield


def fill(path: Path) -> None:
    """Fill the filesystem holding `path` until no byte is left."""
    with (path / "filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * (1 << 16))
        except OSError:
            pass
