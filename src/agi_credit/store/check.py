"""`agi-credit store check`: what a killed job or a damaged volume left in the store.

Orphans are files no committed metadata.json names: an artifact or report of a job killed
before its commit, the staging directory of a job that is gone, the temporary file of an
interrupted metadata write. They harm nothing (versions are numbered past them) and `fix`
removes them. Damage is what the metadata names but the disk does not hold: a missing
artifact, or one whose bytes no longer match their sha256. It is reported, never "fixed":
only a backup can restore a model.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from agi_credit._files import sha256_of
from agi_credit.store.errors import StoreError
from agi_credit.store.metadata import StoreMetadata
from agi_credit.store.store import JOB_LOCK, ModelStore
from agi_credit.store.versions import VERSION_PATTERN, version_number

__all__ = ["Orphan", "StoreCheck", "check_store"]

_METADATA_TEMP = re.compile(r"^\.metadata\.json\..+\.tmp$")


@dataclass(frozen=True, slots=True)
class Orphan:
    path: Path
    """Relative to the store's root."""
    why: str
    version: str | None = None
    """The version number it holds, kept out of reuse when it is removed."""


@dataclass(slots=True)
class StoreCheck:
    orphans: list[Orphan] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)
    removed: list[Orphan] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.orphans and not self.damage


def check_store(store: ModelStore, *, fix: bool = False, actor: str | None = None) -> StoreCheck:
    """Find orphans and damage; with `fix`, remove the orphans under the store's lock and
    record their version numbers in the history, so that they are never reused. Refuses to
    fix a store whose metadata.json cannot be read: nothing would be known to be orphaned."""
    if not fix:
        try:
            metadata = store.read()
        except StoreError as exc:  # nothing is known to be orphaned without it
            return StoreCheck(damage=[str(exc)])
        return _inspect(store, metadata)
    with store.transaction(actor=actor) as txn:
        report = _inspect(store, txn.metadata)
        for orphan in report.orphans:
            _remove(store.root / orphan.path)
            report.removed.append(orphan)
            if orphan.version is not None and orphan.version not in txn.discarded():
                txn.discard(orphan.version, reason="store check --fix removed its orphaned files")
        report.orphans = []
    return report


def _inspect(store: ModelStore, metadata: StoreMetadata) -> StoreCheck:
    report = StoreCheck(damage=_damage(store, metadata))
    registered = set(metadata.versions())
    for version in sorted(set(store.artifact_versions()) - registered, key=version_number):
        path = _relative(store, store.artifact_path(version))
        report.orphans.append(Orphan(path, "artifact of an unregistered version", version))
    if store.reports_dir.is_dir():
        for path in sorted(store.reports_dir.iterdir()):
            if VERSION_PATTERN.fullmatch(path.name) and path.name not in registered:
                report.orphans.append(
                    Orphan(_relative(store, path), "report of an unregistered version", path.name)
                )
    if store.staging_dir.is_dir():
        for path in sorted(store.staging_dir.iterdir()):
            if not _job_is_running(path):
                report.orphans.append(
                    Orphan(_relative(store, path), "staging directory of a job that is gone")
                )
    if store.root.is_dir():
        for path in sorted(store.root.iterdir()):
            if _METADATA_TEMP.match(path.name):
                report.orphans.append(
                    Orphan(_relative(store, path), "temporary file of an interrupted commit")
                )
    return report


def _damage(store: ModelStore, metadata: StoreMetadata) -> list[str]:
    """Registered versions whose artifact is missing or no longer what was registered."""
    damage = []
    for entry in metadata.models:
        path = store.artifact_path(entry.version)
        if not path.is_file():
            damage.append(f"{entry.version}: {_relative(store, path)} is missing")
        elif entry.artifact is not None and sha256_of(path) != entry.artifact.sha256:
            damage.append(f"{entry.version}: {_relative(store, path)} does not match its sha256")
    return damage


def _job_is_running(staging: Path) -> bool:
    """A job holds the lock in its staging directory while it runs (see
    `ModelStore.staging`); the kernel releases it when the job dies, however it dies."""
    lock = FileLock(staging / JOB_LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except OSError:  # a read-only store: no job can write there
        return False
    lock.release()
    return False


def _remove(path: Path) -> None:
    try:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot remove {path}: {exc.strerror or exc}") from exc


def _relative(store: ModelStore, path: Path) -> Path:
    return path.relative_to(store.root)
