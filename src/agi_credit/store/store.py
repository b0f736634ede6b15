"""The model store: a directory (a PVC in Kubernetes) shared by training jobs and predictors.

    <root>/metadata.json          current_version, models[], history[]
    <root>/models/model_vN.rds    immutable once written
    <root>/reports/vN/            model card and plots
    <root>/staging/job-*/         private scratch directories of running jobs, each
                                  holding its .job.lock while the job runs
    <root>/.lock                  writers hold it exclusively

Writers change the store only inside `transaction()`: under the lock, metadata.json is
replaced atomically at the end, and files created by a transaction that fails are removed,
so a failure leaves the store exactly as it was. Readers take no lock. A job killed with
SIGKILL cannot undo: what it leaves is found by `agi-credit store check` (store/check.py).
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from pydantic import ValidationError

from agi_credit._files import NotDurable, atomic_write, fsync_dir, sha256_of
from agi_credit.store.errors import (
    EmptyStore,
    StoreError,
    VersionNotFound,
    VersionRejected,
)
from agi_credit.store.metadata import (
    Action,
    Artifact,
    HistoryEvent,
    ModelEntry,
    Status,
    StoreMetadata,
)
from agi_credit.store.versions import VERSION_PATTERN, version_name, version_number

__all__ = ["JOB_LOCK", "ModelStore", "StoreTransaction", "default_actor"]

JOB_LOCK = ".job.lock"
"""Held in a job's staging directory while the job runs."""

_log = logging.getLogger("agi_credit.store")
_VERSIONED_FILE = re.compile(rf"^model_({VERSION_PATTERN.pattern})\.rds$")


def default_actor() -> str:
    """Who is acting when nobody says (AGI_CREDIT_ACTOR, read by the settings): `user@host`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


class ModelStore:
    """A model store rooted at `root`."""

    def __init__(self, root: Path, *, lock_timeout: float = 120.0) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout

    @property
    def metadata_path(self) -> Path:
        return self.root / "metadata.json"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def staging_dir(self) -> Path:
        return self.root / "staging"

    def artifact_path(self, version: str) -> Path:
        version_number(version)  # validated before it becomes part of a path
        return self.models_dir / f"model_{version}.rds"

    def report_dir(self, version: str) -> Path:
        version_number(version)
        return self.reports_dir / version

    # -- reading ------------------------------------------------------------------------

    def read(self) -> StoreMetadata:
        """The metadata as last committed; an empty one when the store is new."""
        try:
            text = self.metadata_path.read_bytes()  # invalid UTF-8 is invalid JSON below
        except FileNotFoundError:
            if artifacts := self.artifact_versions():
                # A lost metadata.json, not a new store: writing one now would drop them all.
                raise StoreError(
                    f"{self.metadata_path} is missing but {self.models_dir} holds "
                    f"{len(artifacts)} model file(s): restore metadata.json from a backup"
                ) from None
            return StoreMetadata()
        except OSError as exc:
            raise StoreError(f"cannot read {self.metadata_path}: {exc.strerror}") from exc
        try:
            metadata = StoreMetadata.model_validate_json(text)
        except ValidationError as exc:
            raise StoreError(
                f"{self.metadata_path} is not a valid model store: "
                f"{exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}"
            ) from exc
        for entry in metadata.models:
            version_number(entry.version)
        return metadata

    def artifact_versions(self) -> list[str]:
        """The versions that have a file in models/, registered or not."""
        if not self.models_dir.is_dir():
            return []
        return [m[1] for p in self.models_dir.iterdir() if (m := _VERSIONED_FILE.match(p.name))]

    def get(self, version: str) -> ModelEntry:
        version_number(version)
        metadata = self.read()
        entry = metadata.find(version)
        if entry is None:
            raise VersionNotFound(version, metadata.versions())
        return entry

    def current(self) -> ModelEntry:
        metadata = self.read()
        if metadata.current_version is None or not metadata.models:
            raise EmptyStore(self.root)
        entry = metadata.find(metadata.current_version)
        if entry is None:
            raise StoreError(
                f"{self.metadata_path}: current_version "
                f"{metadata.current_version} is not among the models"
            )
        return entry

    # -- writing ------------------------------------------------------------------------

    def _locked(self) -> FileLock:
        """The store's writer lock, acquired."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.root / ".lock", timeout=self.lock_timeout)
            lock.acquire()
        except Timeout as exc:
            raise StoreError(
                f"the model store at {self.root} is locked by another job "
                f"(waited {self.lock_timeout:.0f} s)"
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"cannot write to the model store at {self.root}: {exc.strerror or exc}"
            ) from exc
        return lock

    @contextmanager
    def transaction(self, *, actor: str | None = None) -> Iterator[StoreTransaction]:
        """Hold the store's lock; commit metadata.json atomically when the block ends,
        or undo the files the block created when it raises."""
        lock = self._locked()
        try:
            txn = StoreTransaction(self, self.read(), actor=actor or default_actor())
            try:
                yield txn
                self._write_metadata(txn.metadata)
            except BaseException:
                txn.undo()
                raise
        finally:
            lock.release()

    def _write_metadata(self, metadata: StoreMetadata) -> None:
        """Replace metadata.json; raises only when the old file is still in place."""
        try:
            atomic_write(self.metadata_path, metadata.to_json().encode("utf-8"))
        except NotDurable as exc:
            # metadata.json was replaced: the commit stands, and its files must stay.
            _log.warning(
                "metadata.json written but its directory not synced",
                extra={"event": "store_not_durable", "error": str(exc)},
            )
        except OSError as exc:
            raise StoreError(f"cannot write {self.metadata_path}: {exc.strerror or exc}") from exc

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private scratch directory inside the store (same filesystem: the artifact is
        moved from it atomically), removed when the block ends. Its job lock is taken under
        the store's lock, so `store check` never sees it unowned while the job lives."""
        store_lock = self._locked()
        try:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
            path = self.staging_dir / f"job-{uuid.uuid4().hex[:12]}"
            path.mkdir()
            job_lock = FileLock(path / JOB_LOCK, timeout=0)
            job_lock.acquire()
        except OSError as exc:
            raise StoreError(
                f"cannot write to the model store at {self.root}: {exc.strerror or exc}"
            ) from exc
        finally:
            store_lock.release()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            job_lock.release()

    # -- governance ---------------------------------------------------------------------

    def promote(
        self, version: str, *, actor: str | None = None, reason: str | None = None
    ) -> ModelEntry:
        """Make `version` the current one."""
        with self.transaction(actor=actor) as txn:
            return txn.promote(version, reason=reason)

    def rollback(self, *, actor: str | None = None, reason: str | None = None) -> ModelEntry:
        """Go back to the version that was active before the current one."""
        with self.transaction(actor=actor) as txn:
            return txn.rollback(reason=reason)

    def reject(self, version: str, *, reason: str, actor: str | None = None) -> ModelEntry:
        """Mark `version` unfit for production; it can no longer be promoted."""
        with self.transaction(actor=actor) as txn:
            return txn.reject(version, reason=reason)


class StoreTransaction:
    """Changes to the store made under its lock (see `ModelStore.transaction`)."""

    def __init__(self, store: ModelStore, metadata: StoreMetadata, *, actor: str) -> None:
        self.store = store
        self.metadata = metadata
        self.actor = actor
        self._created: list[Path] = []

    def next_version(self) -> str:
        """One more than any version ever seen: in metadata, in models/ or in reports/,
        so a version whose entry was lost is still never reused."""
        seen = [m.number for m in self.metadata.models]
        seen += [version_number(event.version) for event in self.metadata.history]
        seen += [version_number(v) for v in self.store.artifact_versions()]
        if self.store.reports_dir.is_dir():
            seen += [
                version_number(p.name)
                for p in self.store.reports_dir.iterdir()
                if VERSION_PATTERN.fullmatch(p.name)
            ]
        return version_name(max(seen, default=0) + 1)

    def install_artifact(self, source: Path, version: str) -> Artifact:
        """Move a staged .rds into models/ as model_vN.rds (never overwriting one)."""
        target = self.store.artifact_path(version)
        try:
            self._make_dir(self.store.models_dir)
            with source.open("rb") as src, target.open("xb") as dst:
                self._created.append(target)
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
            target.chmod(0o444)  # immutable once written
            fsync_dir(self.store.models_dir)
        except FileExistsError as exc:
            raise StoreError(f"{target} already exists; versions are never reused") from exc
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return Artifact(
            path=str(target.relative_to(self.store.root)),
            sha256=sha256_of(target),
            size_bytes=target.stat().st_size,
        )

    def create_report_dir(self, version: str) -> Path:
        path = self.store.report_dir(version)
        try:
            self._make_dir(self.store.reports_dir)
            path.mkdir()
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from exc
        self._created.append(path)
        return path

    def add(self, entry: ModelEntry) -> None:
        """Register a new version as a candidate."""
        if self.metadata.find(entry.version) is not None:
            raise StoreError(f"version {entry.version} is already registered")
        entry.status = Status.CANDIDATE
        self.metadata.models.append(entry)
        self._record("register", entry.version)

    def promote(self, version: str, *, reason: str | None = None) -> ModelEntry:
        entry = self._existing(version)
        if self.metadata.status_of(entry) is Status.REJECTED:
            raise VersionRejected(version, entry.status_reason)
        self._activate(entry, action="promote", reason=reason)
        return entry

    def rollback(self, *, reason: str | None = None) -> ModelEntry:
        current = self._current()
        stack = self._activation_stack()
        while stack and stack[-1] == current.version:
            stack.pop()
        while stack:
            candidate = self.metadata.find(stack[-1])
            if candidate is not None and self.metadata.status_of(candidate) is not Status.REJECTED:
                self._activate(candidate, action="rollback", reason=reason)
                return candidate
            stack.pop()
        raise StoreError(f"no earlier active version to roll back to from {current.version}")

    def reject(self, version: str, *, reason: str) -> ModelEntry:
        entry = self._existing(version)
        if version == self.metadata.current_version:
            raise StoreError(
                f"{version} is the current version: promote another version "
                "or roll back before rejecting it"
            )
        entry.status = Status.REJECTED
        entry.status_reason = reason
        self._record("reject", version, reason=reason)
        return entry

    def discard(self, version: str, *, reason: str) -> None:
        """Record that an unregistered version's files were removed: its number stays used."""
        version_number(version)
        self._record("discard", version, reason=reason)

    def discarded(self) -> set[str]:
        """Versions whose files were removed before they were registered."""
        return {event.version for event in self.metadata.history if event.action == "discard"}

    def undo(self) -> None:
        """Remove what this transaction created; metadata.json was not written."""
        for path in reversed(self._created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    # -- internals -------------------------------------------------------------------

    def _make_dir(self, path: Path) -> None:
        """mkdir that `undo` reverses when it created the directory."""
        if not path.is_dir():
            path.mkdir(parents=True)
            self._created.append(path)

    def _existing(self, version: str) -> ModelEntry:
        version_number(version)
        if not self.metadata.models:
            raise EmptyStore(self.store.root)
        entry = self.metadata.find(version)
        if entry is None:
            raise VersionNotFound(version, self.metadata.versions())
        return entry

    def _current(self) -> ModelEntry:
        if not self.metadata.models or self.metadata.current_version is None:
            raise EmptyStore(self.store.root)
        return self._existing(self.metadata.current_version)

    def _activate(self, entry: ModelEntry, *, action: Action, reason: str | None) -> None:
        previous = self.metadata.current_version
        for other in self.metadata.models:
            if self.metadata.status_of(other) is Status.ACTIVE:
                other.status = Status.ARCHIVED
        entry.status = Status.ACTIVE
        self.metadata.current_version = entry.version
        self._record(action, entry.version, previous=previous, reason=reason)

    def _activation_stack(self) -> list[str]:
        """The versions that were active, most recent last: a promotion pushes, a rollback
        pops. The origin's stores have no history: their versions count in order."""
        stack: list[str] = []
        for event in self.metadata.history:
            if event.action == "promote":
                stack.append(event.version)
            elif event.action == "rollback":
                while stack and stack[-1] != event.version:
                    stack.pop()
                if not stack:
                    stack.append(event.version)
        current = self.metadata.current_version
        if not stack and current is not None:
            stack = [
                v for v in self.metadata.versions() if version_number(v) <= version_number(current)
            ]
        if current is not None and (not stack or stack[-1] != current):
            stack.append(current)
        return stack

    def _record(
        self,
        action: Action,
        version: str,
        *,
        previous: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.metadata.history.append(
            HistoryEvent(
                action=action,
                version=version,
                actor=self.actor,
                previous_version=previous,
                reason=reason,
            )
        )
