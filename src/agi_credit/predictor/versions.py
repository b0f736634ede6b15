"""Which versions are served: loaded once from the store, swapped atomically on change.

Every call into R runs on one thread (`RThread`): R is single-threaded and not re-entrant.
The serving state is an immutable snapshot; a request reads it once and finishes on the
versions it saw, while a reload builds the next snapshot in the background.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from agi_credit._errors import AgiCreditError
from agi_credit._files import sha256_of
from agi_credit.predictor.errors import VersionUnavailable
from agi_credit.predictor.schema import FeatureSchema
from agi_credit.predictor.scorers import (
    CompiledGlm,
    NotCompilable,
    RScorer,
    Scorer,
    parity_gap,
)
from agi_credit.store import ModelEntry, ModelStore, Status, StoreError, version_number

log = logging.getLogger("agi_credit.predictor")
T = TypeVar("T")

SINGLE_MODEL_VERSION = "v1"


class RThread:
    """A single thread that owns the embedded R session."""

    def __init__(self) -> None:
        # R starts on the calling (main) thread, which may take over its signal handling;
        # rpy2 disables R's C stack check, so the R thread below may call into it.
        import agi_credit.rruntime  # noqa: F401

        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="R")

    def run(self, function: Callable[..., T], *args: object) -> T:
        return self.executor.submit(function, *args).result()


@dataclass(frozen=True, slots=True)
class ServedVersion:
    version: str
    schema: FeatureSchema
    scorer: Scorer
    threshold: float
    sha256: str
    parity_gap: float | None = None
    """Largest |compiled - R| on the parity sample, for compiled scorers."""
    note: str | None = None
    """Why a recipe + glm model runs in R rather than compiled."""

    @property
    def path(self) -> str:
        return self.scorer.path


@dataclass(frozen=True, slots=True)
class ServingState:
    """One consistent view: the versions served and the default one."""

    current: str | None = None
    """The version served when none is asked for."""
    store_current: str | None = None
    """What metadata.json names; differs from `current` while that version cannot load."""
    served: dict[str, ServedVersion] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    """Version → why it is not served (failed to load, rejected)."""

    def resolve(self, version: str | None) -> ServedVersion:
        if version is None:
            if self.current is not None:
                return self.served[self.current]
            if self.store_current in self.unavailable:
                raise VersionUnavailable(
                    f"the current version {self.store_current} is not served: "
                    f"{self.unavailable[self.store_current]}"
                )
            raise VersionUnavailable(
                "no model version can be served: " + _reasons(self.unavailable)
            )
        version_number(version)  # InvalidVersionName: a 400 before anything else
        if version in self.served:
            return self.served[version]
        if version in self.unavailable:
            raise VersionUnavailable(
                f"version {version} is not served: {self.unavailable[version]}"
            )
        raise VersionUnavailable(
            f"unknown version {version}; served: {', '.join(self.served) or 'none'}"
        )


def _reasons(unavailable: dict[str, str]) -> str:
    return "; ".join(f"{v}: {why}" for v, why in unavailable.items()) or "the store is empty"


class VersionLoadError(AgiCreditError):
    pass


class VersionRegistry:
    """Loads the versions of a store (or one .rds) and keeps the serving state current."""

    def __init__(
        self,
        *,
        r: RThread,
        store: ModelStore | None = None,
        model_path: Path | None = None,
        feature_metadata_path: Path | None = None,
        max_rows: int,
        parity_rows: int = 1000,
        parity_tolerance: float = 1e-9,
    ) -> None:
        if (store is None) == (model_path is None):
            raise ValueError("serve either a store or one model file")
        self.r = r
        self.store = store
        self.model_path = model_path
        self.feature_metadata_path = feature_metadata_path
        self.max_rows = max_rows
        self.parity_rows = parity_rows
        self.parity_tolerance = parity_tolerance
        self.state = ServingState()
        self._loaded: dict[tuple[str, str], ServedVersion] = {}
        self._failed: dict[tuple[str, str], str] = {}
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- loading ---------------------------------------------------------------------------

    def refresh(self) -> ServingState:
        """Read the store, load what is new, publish the next state; return it."""
        with self._refresh_lock:
            state = self._next_state()
            if state != self.state:
                self._log_changes(self.state, state)
                self.state = state  # one reference assignment: atomic for readers
            return state

    def _next_state(self) -> ServingState:
        if self.model_path is not None:
            single, failed = self._load_single()
            return ServingState(
                current=SINGLE_MODEL_VERSION if single else None,
                store_current=SINGLE_MODEL_VERSION,
                served=single,
                unavailable=failed,
            )
        assert self.store is not None
        metadata = self.store.read()
        served: dict[str, ServedVersion] = {}
        unavailable: dict[str, str] = {}
        for entry in sorted(metadata.models, key=lambda m: m.number):
            if metadata.status_of(entry) is Status.REJECTED:
                unavailable[entry.version] = f"rejected ({entry.status_reason or 'no reason'})"
                continue
            try:
                served[entry.version] = self._load_entry(entry)
            except VersionLoadError as exc:
                unavailable[entry.version] = str(exc)
        current = metadata.current_version if metadata.current_version in served else None
        if current is None and self.state.current in served:
            current = self.state.current  # keep serving the last good version
        return ServingState(
            current=current,
            store_current=metadata.current_version,
            served=served,
            unavailable=unavailable,
        )

    def _load_entry(self, entry: ModelEntry) -> ServedVersion:
        assert self.store is not None
        path = self.store.artifact_path(entry.version)
        if not path.is_file():
            raise VersionLoadError(f"model file {path.name} is missing")
        digest = sha256_of(path)
        key = (entry.version, digest)
        if key in self._loaded:
            return self._loaded[key]
        if key in self._failed:
            raise VersionLoadError(self._failed[key])
        try:
            if entry.artifact is not None and digest != entry.artifact.sha256:
                raise VersionLoadError(f"{path.name} does not match its sha256 in metadata.json")
            loaded = self.r.run(
                self._build,
                entry.version,
                path,
                tuple(entry.features),
                entry.decision_threshold or 0.5,
                digest,
            )
        except VersionLoadError as exc:
            self._failed[key] = str(exc)
            raise
        self._loaded[key] = loaded
        return loaded

    def _load_single(self) -> tuple[dict[str, ServedVersion], dict[str, str]]:
        assert self.model_path is not None
        key = (SINGLE_MODEL_VERSION, str(self.model_path))
        if key not in self._loaded and key not in self._failed:
            try:
                features = self._declared_features()
                self._loaded[key] = self.r.run(
                    self._build,
                    SINGLE_MODEL_VERSION,
                    self.model_path,
                    features,
                    0.5,
                    sha256_of(self.model_path) if self.model_path.is_file() else "",
                )
            except VersionLoadError as exc:
                self._failed[key] = str(exc)
        if key in self._loaded:
            return {SINGLE_MODEL_VERSION: self._loaded[key]}, {}
        return {}, {SINGLE_MODEL_VERSION: self._failed[key]}

    def _declared_features(self) -> tuple[str, ...] | None:
        if self.feature_metadata_path is None:
            return None
        try:
            features = json.loads(self.feature_metadata_path.read_text())["features"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VersionLoadError(
                f"cannot read features from {self.feature_metadata_path}: {exc}"
            ) from exc
        return tuple(str(f) for f in features)

    def _build(
        self,
        version: str,
        path: Path,
        features: tuple[str, ...] | None,
        threshold: float,
        digest: str,
    ) -> ServedVersion:
        """Load and prepare one version. Runs on the R thread."""
        from agi_credit.rruntime import RError, RModel, linear_form

        try:
            model = RModel.load(path)
        except RError as exc:
            raise VersionLoadError(str(exc)) from exc
        features = features or model.features
        if not features:
            raise VersionLoadError(f"{path.name}: the model does not say which features it uses")
        if model.features and set(model.features) != set(features):
            raise VersionLoadError(
                f"{path.name}: model features {list(model.features)} differ "
                f"from metadata {list(features)}"
            )
        r_scorer = RScorer(model=model, features=features)
        try:
            form = linear_form(model)
            if form is None:
                raise NotCompilable(f"model shape {model.shape}")
            compiled = CompiledGlm.from_linear_form(form, features)
            gap = parity_gap(compiled, r_scorer.score, rows=self.parity_rows)
        except (NotCompilable, RError) as exc:
            return self._served(
                version,
                r_scorer,
                features,
                frozenset(),
                threshold,
                digest,
                note=f"scored in R: {exc}",
            )
        if not gap <= self.parity_tolerance:
            return self._served(
                version,
                r_scorer,
                features,
                compiled.imputed,
                threshold,
                digest,
                note=f"scored in R: compiled scorer differs from R by "
                f"{gap:.3g} on the parity sample",
            )
        return self._served(
            version, compiled, features, compiled.imputed, threshold, digest, gap=gap
        )

    def _served(
        self,
        version: str,
        scorer: Scorer,
        features: tuple[str, ...],
        nullable: frozenset[str],
        threshold: float,
        digest: str,
        *,
        gap: float | None = None,
        note: str | None = None,
    ) -> ServedVersion:
        schema = FeatureSchema(features=features, nullable=nullable, max_rows=self.max_rows)
        return ServedVersion(
            version=version,
            schema=schema,
            scorer=scorer,
            threshold=threshold,
            sha256=digest,
            parity_gap=gap,
            note=note,
        )

    # -- watching --------------------------------------------------------------------------

    def watch(self, interval: float) -> None:
        """Follow metadata.json in the background; reload when it changes."""
        if self.store is None or self._watcher is not None:
            return
        self._watcher = threading.Thread(
            target=self._watch, args=(interval,), name="store-watcher", daemon=True
        )
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, interval: float) -> None:
        assert self.store is not None
        seen = _signature(self.store.metadata_path)
        while not self._stop.wait(interval):
            now = _signature(self.store.metadata_path)
            if now == seen:
                continue
            seen = now
            try:
                self.refresh()
            except (StoreError, OSError) as exc:  # a half-edited file, a missing volume…
                log.error("reload failed", extra={"event": "reload_failed", "error": str(exc)})

    def _log_changes(self, before: ServingState, after: ServingState) -> None:
        for version, served in after.served.items():
            if version not in before.served:
                log.info(
                    "version loaded",
                    extra={
                        "event": "version_loaded",
                        "model_version": version,
                        "path": served.path,
                        "parity_gap": served.parity_gap,
                        "note": served.note,
                    },
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


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
