"""File helpers shared by the rooms."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["NotDurable", "atomic_write", "atomic_writer", "fsync_dir", "sha256_of"]


class NotDurable(OSError):
    """The file was replaced, but its directory could not be synced: the new content is in
    place and readers see it; only its survival of a power cut is not guaranteed."""


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a new or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A stream whose bytes replace `path` when the block ends without error: readers see
    the old file or the new one, never a part.

    The bytes go to a temporary file beside `path`, which is fsynced, given `mode` and renamed
    over `path`; then the directory is fsynced. An error before the rename leaves `path` as it
    was; once the rename is done the write stands (`NotDurable` if the directory sync fails).
    """
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    try:
        fsync_dir(path.parent)
    except OSError as exc:
        raise NotDurable(exc.errno, f"{path} was written but {path.parent} not synced") from exc


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` atomically (see `atomic_writer`)."""
    with atomic_writer(path, mode) as out:
        out.write(data)
