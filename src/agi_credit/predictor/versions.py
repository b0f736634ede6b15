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
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from agi_credit._errors import AgiCreditError
from agi_credit._files import sha256_of
from agi_credit.predictor.errors import VersionUnavailable
from agi_credit.predictor.schema import FeatureSchema
from agi_credit.predictor.scorers import (
    CompiledGlm,
    NotCompilable,
    RScorer,
    Scorer,
    parity_sample,
)
from agi_credit.rruntime import RError, RModel, ScoringJob, linear_form, predict_in_child
from agi_credit.store import TIME_FORMAT, ModelStore, Status, StoreError, version_number

log = logging.getLogger("agi_credit.predictor")
T = TypeVar("T")

SINGLE_MODEL_VERSION = "v1"


class RThread:
    """A single thread that owns the embedded R session.

    R itself starts when `agi_credit.rruntime` is imported, on the importing (main) thread,
    which may take over its signal handling; rpy2 disables R's C stack check, so this
    thread may call into it afterwards.
    """

    def __init__(self) -> None:
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
    created_at: str | None = None
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


@dataclass(frozen=True, slots=True)
class _Candidate:
    version: str
    path: Path
    features: tuple[str, ...] | None
    threshold: float
    expected_sha256: str | None
    created_at: str | None = None


@dataclass(slots=True)
class _Prepared:
    candidate: _Candidate
    digest: str
    features: tuple[str, ...]
    r_scorer: RScorer
    compiled: CompiledGlm | None = None
    note: str | None = None


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
        compile: bool = True,
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
        self.compile = compile
        self.state = ServingState()
        self._loaded: dict[tuple[str, str], ServedVersion] = {}
        self._failed: dict[tuple[str, str], str] = {}
        self._digests: dict[Path, tuple[tuple[int, int, int], str]] = {}
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
        candidates, unavailable, store_current = self._candidates()
        served: dict[str, ServedVersion] = {}
        fresh: list[tuple[tuple[str, str], _Candidate]] = []
        for candidate in candidates:
            try:
                key = (candidate.version, self._digest(candidate))
            except VersionLoadError as exc:
                unavailable[candidate.version] = str(exc)
                continue
            if key in self._loaded:
                served[candidate.version] = self._loaded[key]
            elif key in self._failed:
                unavailable[candidate.version] = self._failed[key]
            else:
                fresh.append((key, candidate))
        for key, outcome in self._load(fresh):
            if isinstance(outcome, ServedVersion):
                self._loaded[key] = served[key[0]] = outcome
            else:
                self._failed[key] = unavailable[key[0]] = outcome
        served = dict(sorted(served.items(), key=lambda item: version_number(item[0])))
        current = store_current if store_current in served else None
        if current is None and self.state.current in served:
            current = self.state.current  # keep serving the last good version
        return ServingState(
            current=current, store_current=store_current, served=served, unavailable=unavailable
        )

    def _candidates(self) -> tuple[list[_Candidate], dict[str, str], str | None]:
        """The versions to serve, the ones refused by governance, and the current one."""
        if self.model_path is not None:
            features = self._declared_features()
            created = (
                datetime.fromtimestamp(self.model_path.stat().st_mtime, UTC).strftime(TIME_FORMAT)
                if self.model_path.exists()
                else None
            )
            single = _Candidate(SINGLE_MODEL_VERSION, self.model_path, features, 0.5, None, created)
            return [single], {}, SINGLE_MODEL_VERSION
        assert self.store is not None
        metadata = self.store.read()
        candidates, rejected = [], {}
        for entry in sorted(metadata.models, key=lambda m: m.number):
            if metadata.status_of(entry) is Status.REJECTED:
                rejected[entry.version] = f"rejected ({entry.status_reason or 'no reason'})"
                continue
            candidates.append(
                _Candidate(
                    entry.version,
                    self.store.artifact_path(entry.version),
                    tuple(entry.features),
                    entry.decision_threshold or 0.5,
                    entry.artifact.sha256 if entry.artifact else None,
                    entry.created_at,
                )
            )
        return candidates, rejected, metadata.current_version

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

    def _digest(self, candidate: _Candidate) -> str:
        """The file's sha256, computed again only when the file changed (every reload reads
        every version; large artifacts must not be hashed each time)."""
        signature = _signature(candidate.path)
        if signature is None or not candidate.path.is_file():
            raise VersionLoadError(f"model file {candidate.path.name} is missing")
        cached = self._digests.get(candidate.path)
        if cached is not None and cached[0] == signature:
            digest = cached[1]
        else:
            digest = sha256_of(candidate.path)
            self._digests[candidate.path] = (signature, digest)
        if candidate.expected_sha256 is not None and digest != candidate.expected_sha256:
            raise VersionLoadError(
                f"{candidate.path.name} does not match its sha256 in metadata.json"
            )
        return digest

    def _load(
        self, fresh: list[tuple[tuple[str, str], _Candidate]]
    ) -> list[tuple[tuple[str, str], ServedVersion | str]]:
        """Load new versions: read them in R (on the R thread), then check every compiled
        scorer against R's own predictions, all in one child R process."""
        outcomes: list[tuple[tuple[str, str], ServedVersion | str]] = []
        prepared: list[tuple[tuple[str, str], _Prepared]] = []
        for key, candidate in fresh:
            try:
                prepared.append((key, self.r.run(self._prepare, candidate, key[1])))
            except VersionLoadError as exc:
                outcomes.append((key, str(exc)))
        checked = [(key, p) for key, p in prepared if p.compiled is not None and self.compile]
        samples = [
            parity_sample(p.compiled, rows=self.parity_rows)  # type: ignore[arg-type]
            for _, p in checked
        ]
        try:
            r_results = predict_in_child(
                [
                    ScoringJob(rds=p.candidate.path, features=p.features, rows=sample)
                    for (_, p), sample in zip(checked, samples, strict=True)
                ]
            )
        except RError as exc:
            r_results = [exc] * len(checked)
        gaps: dict[tuple[str, str], float | RError] = {}
        for (key, p), sample, r_prob in zip(checked, samples, r_results, strict=True):
            assert p.compiled is not None
            gaps[key] = (
                r_prob
                if isinstance(r_prob, RError)
                else float(np.max(np.abs(p.compiled.score(sample) - r_prob)))
            )
        outcomes += [(key, self._finish(p, gaps.get(key))) for key, p in prepared]
        return outcomes

    def _prepare(self, candidate: _Candidate, digest: str) -> _Prepared:
        """Read one version in R and compile it if its shape allows. Runs on the R thread."""
        try:
            model = RModel.load(candidate.path)
        except RError as exc:
            raise VersionLoadError(str(exc)) from exc
        features = candidate.features or model.features
        name = candidate.path.name
        if not features:
            raise VersionLoadError(f"{name}: the model does not say which features it uses")
        if model.features and set(model.features) != set(features):
            raise VersionLoadError(
                f"{name}: model features {list(model.features)} differ "
                f"from metadata {list(features)}"
            )
        prepared = _Prepared(
            candidate=candidate,
            digest=digest,
            features=features,
            r_scorer=RScorer(model=model, features=features),
        )
        try:
            form = linear_form(model)
            if form is None:
                raise NotCompilable(f"model shape {model.shape}")
            prepared.compiled = CompiledGlm.from_linear_form(form, features)
        except (NotCompilable, RError) as exc:
            prepared.note = f"scored in R: {exc}"
        return prepared

    def _finish(self, prepared: _Prepared, gap: float | RError | None) -> ServedVersion | str:
        compiled = prepared.compiled
        if isinstance(gap, RError):
            return f"R cannot score {prepared.candidate.path.name}: {gap}"
        if compiled is not None and not self.compile:
            prepared.note = "scored in R: compiled scoring is off (SCORING=r)"
        elif compiled is not None and gap is not None and not gap <= self.parity_tolerance:
            prepared.note = (
                f"scored in R: the compiled scorer differs from R by {gap:.3g} on the parity sample"
            )
        elif compiled is not None and gap is not None:
            return self._served(prepared, compiled, compiled.imputed, gap=gap)
        nullable = compiled.imputed if compiled is not None else frozenset()
        try:  # warm R up (bake loads recipes on first use) and prove it can score
            self.r.run(prepared.r_scorer.score, np.ones((1, len(prepared.features))))
        except RError as exc:
            return f"R cannot score {prepared.candidate.path.name}: {exc}"
        return self._served(prepared, prepared.r_scorer, nullable, gap=gap)

    def _served(
        self, prepared: _Prepared, scorer: Scorer, nullable: frozenset[str], *, gap: float | None
    ) -> ServedVersion:
        schema = FeatureSchema(
            features=prepared.features, nullable=nullable, max_rows=self.max_rows
        )
        return ServedVersion(
            version=prepared.candidate.version,
            schema=schema,
            scorer=scorer,
            threshold=prepared.candidate.threshold,
            sha256=prepared.digest,
            created_at=prepared.candidate.created_at,
            parity_gap=gap,
            note=prepared.note,
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
