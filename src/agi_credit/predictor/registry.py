"""The registry: follows the store (or one .rds) and publishes the serving state.

A watcher thread polls metadata.json and the artifacts it names; when one changes, the
registry loads what is new and swaps the state. The watcher never dies: any failure is
logged, counted and reported in the model metadata, and the next poll tries again.

A damaged store never takes away what is loaded: a served version whose file goes missing
or changes stays served from memory (and is reported), and a metadata.json that cannot be
read, or that loses its versions, keeps the last good state.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from agi_credit.predictor.loader import (
    Candidate,
    DigestCache,
    LoadFailure,
    VersionLoader,
    file_signature,
)
from agi_credit.predictor.observability import RELOAD_ERRORS, STORE_PROBLEMS
from agi_credit.predictor.state import ServedVersion, ServingState, VersionKey
from agi_credit.store import TIME_FORMAT, ModelStore, Status, StoreError, version_number

__all__ = ["SINGLE_MODEL_VERSION", "VersionRegistry"]

log = logging.getLogger("agi_credit.predictor")

_RETRY_SECONDS = 5.0
"""After a failed reload, how long until the same metadata.json is tried again."""

SINGLE_MODEL_VERSION = "v1"
"""The version name of a model served with MODEL_PATH, without a store."""


class VersionRegistry:
    """Loads the versions of a store (or one .rds) and keeps the serving state current."""

    def __init__(
        self,
        loader: VersionLoader,
        *,
        store: ModelStore | None = None,
        model_path: Path | None = None,
        feature_metadata_path: Path | None = None,
        default_threshold: float,
    ) -> None:
        if (store is None) == (model_path is None):
            raise ValueError("serve either a store or one model file")
        self.loader = loader
        self.store = store
        self.model_path = model_path
        self.feature_metadata_path = feature_metadata_path
        self.default_threshold = default_threshold
        self.state = ServingState()
        self.reload_error: str | None = None
        """The last refresh's unexpected failure; None once a refresh succeeds."""
        self._loaded: dict[VersionKey, ServedVersion] = {}
        self._failed: dict[VersionKey, LoadFailure] = {}
        self._digests = DigestCache()
        self._artifacts: tuple[Path, ...] = ()
        """The files of the last refresh's candidates, watched beside metadata.json."""
        self._seen: tuple[object, ...] | None = None
        """Their signatures when the last refresh began: a change after it is not missed."""
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- loading ---------------------------------------------------------------------------

    def refresh(self) -> ServingState:
        """Read the store, load what is new, publish the next state; return it."""
        with self._refresh_lock:
            self._seen = self._signature()
            state = self._next_state()
            if state != self.state:
                _log_changes(self.state, state)
                self.state = state  # one reference assignment: atomic for readers
            self.reload_error = None
            STORE_PROBLEMS.labels("metadata").set(0)
            STORE_PROBLEMS.labels("artifact").set(len(state.damaged))
            return state

    def _next_state(self) -> ServingState:
        candidates, unavailable, store_current = self._candidates()
        self._artifacts = tuple(c.path for c in candidates)
        served: dict[str, ServedVersion] = {}
        failures: list[LoadFailure] = []
        fresh: list[tuple[VersionKey, Candidate]] = []
        for candidate in candidates:
            key = self._digests.key(candidate)
            if isinstance(key, LoadFailure):
                failures.append(key)
            elif key in self._loaded:
                served[key.version] = self._loaded[key]
            elif key in self._failed:
                failures.append(self._failed[key])
            else:
                fresh.append((key, candidate))
        for key, outcome in self.loader.load(fresh).items():
            if isinstance(outcome, LoadFailure):
                self._failed[key] = outcome
                failures.append(outcome)
            else:
                self._loaded[key] = served[key.version] = outcome
        damaged: dict[str, str] = {}
        for failure in failures:
            if failure.version in self.state.served:  # its file went missing or bad
                served[failure.version] = self.state.served[failure.version]
                damaged[failure.version] = f"{failure.reason}; serving the copy loaded before"
            else:
                unavailable[failure.version] = failure.reason
        served = dict(sorted(served.items(), key=lambda item: version_number(item[0])))
        current = store_current if store_current in served else None
        if current is None and self.state.current in served:
            current = self.state.current  # keep serving the last good version
        return ServingState(
            current=current,
            store_current=store_current,
            served=served,
            unavailable=unavailable,
            damaged=damaged,
        )

    def _candidates(self) -> tuple[list[Candidate], dict[str, str], str | None]:
        """The versions to serve, the ones refused by governance, and the current one."""
        if self.model_path is not None:
            return [self._single_candidate(self.model_path)], {}, SINGLE_MODEL_VERSION
        assert self.store is not None
        metadata = self.store.read()
        if not metadata.models and self.state.served:
            raise StoreError(
                f"{self.store.metadata_path} is missing or lists no versions; "
                f"still serving the {len(self.state.served)} loaded before"
            )
        candidates, rejected = [], {}
        for entry in sorted(metadata.models, key=lambda m: m.number):
            if metadata.status_of(entry) is Status.REJECTED:
                rejected[entry.version] = f"rejected ({entry.status_reason or 'no reason'})"
                continue
            candidates.append(
                Candidate(
                    version=entry.version,
                    path=self.store.artifact_path(entry.version),
                    features=tuple(entry.features),
                    threshold=entry.threshold,
                    expected_sha256=entry.artifact.sha256 if entry.artifact else None,
                    created_at=entry.created_at,
                )
            )
        return candidates, rejected, metadata.current_version

    def _single_candidate(self, path: Path) -> Candidate:
        signature = file_signature(path)
        created = (
            datetime.fromtimestamp(signature[1] / 1e9, UTC).strftime(TIME_FORMAT)
            if signature
            else None
        )
        return Candidate(
            version=SINGLE_MODEL_VERSION,
            path=path,
            features=self._declared_features(),
            threshold=self.default_threshold,
            expected_sha256=None,
            created_at=created,
        )

    def _declared_features(self) -> tuple[str, ...] | None:
        if self.feature_metadata_path is None:
            return None
        try:
            features = json.loads(self.feature_metadata_path.read_text())["features"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"cannot read features from {self.feature_metadata_path}: {exc}"
            ) from exc
        return tuple(str(f) for f in features)

    # -- watching --------------------------------------------------------------------------

    def watch(self, interval: float) -> None:
        """Follow metadata.json (or the one .rds) in the background; reload when it
        changes, or when it appears."""
        if self._watcher is not None:
            return
        self._watcher = threading.Thread(
            target=self._watch, args=(interval,), name="store-watcher", daemon=True
        )
        self._watcher.start()

    @property
    def watching(self) -> bool:
        return self._watcher is not None and self._watcher.is_alive()

    def stop(self) -> None:
        self._stop.set()

    @property
    def watched_path(self) -> Path:
        """The file whose change means a reload."""
        if self.store is not None:
            return self.store.metadata_path
        assert self.model_path is not None
        return self.model_path

    def _signature(self) -> tuple[object, ...]:
        """What a reload depends on: metadata.json (or the one .rds) and the artifacts."""
        return tuple(file_signature(p) for p in (self.watched_path, *self._artifacts))

    def _watch(self, interval: float) -> None:
        retry_at = 0.0
        while not self._stop.wait(interval):
            failing = self.reload_error is not None
            if self._signature() == self._seen and not (failing and time.monotonic() >= retry_at):
                continue
            try:
                self.refresh()
            except Exception as exc:  # a half-edited file, a missing volume, a bug: keep polling
                self.record_failure(exc)
                retry_at = time.monotonic() + _RETRY_SECONDS

    def record_failure(self, exc: Exception) -> None:
        """A refresh failed: log it (once per distinct error), count it, keep it as
        `reload_error` until a refresh succeeds."""
        expected = isinstance(exc, StoreError | OSError)
        error = str(exc) if expected else f"{type(exc).__name__}: {exc}"
        RELOAD_ERRORS.labels("store" if expected else "unexpected").inc()
        STORE_PROBLEMS.labels("metadata").set(1)
        if error != self.reload_error:  # once per distinct error, not once per poll
            log.error(
                "reload failed",
                exc_info=None if expected else exc,
                extra={"event": "reload_failed", "error": error},
            )
        self.reload_error = error


def _log_changes(before: ServingState, after: ServingState) -> None:
    for version, served in after.served.items():
        if version not in before.served:
            log.info(
                "version loaded",
                extra={
                    "event": "version_loaded",
                    "model_version": version,
                    "engine": served.engine,
                    "parity_gap": served.parity_gap,
                    "note": served.note,
                },
            )
    for version, why in after.damaged.items():
        if before.damaged.get(version) != why:
            log.error(
                "version damaged in the store",
                extra={"event": "version_damaged", "model_version": version, "error": why},
            )
    for version, why in after.unavailable.items():
        if before.unavailable.get(version) != why:
            log.error(
                "version not served",
                extra={"event": "version_unavailable", "model_version": version, "error": why},
            )
    if after.current != before.current:
        log.info(
            "current version",
            extra={
                "event": "current_version",
                "model_version": after.current,
                "previous_version": before.current,
                "store_current": after.store_current,
            },
        )
