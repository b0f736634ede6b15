"""The loader: an .rds turned into a served version, or a typed failure that says why.

Each new version is read in R (on the R thread) and compiled when its shape allows; every
compiled scorer is then checked against R's own predictions on a parity sample, all in one
child Rscript, and used only when it matches. Anything else is scored in R.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agi_credit import rruntime
from agi_credit._files import sha256_of
from agi_credit.predictor.schema import FeatureSchema
from agi_credit.predictor.scorers import (
    CompiledGlm,
    NotCompilable,
    RScorer,
    Scorer,
    parity_sample,
)
from agi_credit.predictor.state import ServedVersion, VersionKey
from agi_credit.rruntime import RError, RThread, ScoringJob, predict_in_child

__all__ = ["Candidate", "DigestCache", "LoadFailure", "VersionLoader", "file_signature"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A version to serve, as the store (or MODEL_PATH) describes it."""

    version: str
    path: Path
    features: tuple[str, ...] | None
    """As metadata declares them; None: as the model reports them."""
    threshold: float
    expected_sha256: str | None
    created_at: str | None = None


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """Why a version is not served."""

    version: str
    reason: str


Signature = tuple[int, int, int]


def file_signature(path: Path) -> Signature | None:
    """(inode, mtime, size): changes whenever the file is replaced or rewritten."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class DigestCache:
    """Artifacts' sha256, computed again only when the file changed: every reload reads
    every version, and large artifacts must not be hashed each time."""

    def __init__(self) -> None:
        self._digests: dict[Path, tuple[Signature, str]] = {}

    def key(self, candidate: Candidate) -> VersionKey | LoadFailure:
        path = candidate.path
        signature = file_signature(path)
        if signature is None or not path.is_file():
            return LoadFailure(candidate.version, f"model file {path.name} is missing")
        cached = self._digests.get(path)
        if cached is not None and cached[0] == signature:
            digest = cached[1]
        else:
            try:
                digest = sha256_of(path)
            except OSError as exc:
                return LoadFailure(candidate.version, f"cannot read {path.name}: {exc.strerror}")
            self._digests[path] = (signature, digest)
        if candidate.expected_sha256 is not None and digest != candidate.expected_sha256:
            return LoadFailure(
                candidate.version, f"{path.name} does not match its sha256 in metadata.json"
            )
        return VersionKey(candidate.version, digest)


@dataclass(slots=True)
class _Prepared:
    """A version read in R, before its parity check."""

    key: VersionKey
    candidate: Candidate
    features: tuple[str, ...]
    r_scorer: RScorer
    compiled: CompiledGlm | None = None
    note: str | None = None


class VersionLoader:
    """Turns candidates into served versions; holds no state between calls."""

    def __init__(
        self,
        r: RThread,
        *,
        max_rows: int,
        parity_rows: int,
        parity_tolerance: float,
        compile: bool,
    ) -> None:
        self.r = r
        self.max_rows = max_rows
        self.parity_rows = parity_rows
        self.parity_tolerance = parity_tolerance
        self.compile = compile

    def load(
        self, fresh: list[tuple[VersionKey, Candidate]]
    ) -> dict[VersionKey, ServedVersion | LoadFailure]:
        outcomes: dict[VersionKey, ServedVersion | LoadFailure] = {}
        prepared: list[_Prepared] = []
        for key, candidate in fresh:
            try:
                prepared.append(self.r.run(self._prepare, key, candidate))
            except RError as exc:
                outcomes[key] = LoadFailure(key.version, str(exc))
        gaps = self._parity_gaps(prepared)
        for p in prepared:
            outcomes[p.key] = self._finish(p, gaps.get(p.key))
        return outcomes

    def _prepare(self, key: VersionKey, candidate: Candidate) -> _Prepared:
        """Read one version in R and compile it if its shape allows. Runs on the R thread."""
        model = rruntime.RModel.load(candidate.path)
        features = candidate.features or model.features
        if not features:
            raise RError(f"{candidate.path.name}: the model does not say which features it uses")
        model.check_features(features)
        prepared = _Prepared(key, candidate, features, RScorer(model=model, features=features))
        try:
            form = rruntime.linear_form(model)
            if form is None:
                raise NotCompilable(f"model shape {model.shape}")
            prepared.compiled = CompiledGlm.from_linear_form(form, features)
        except (NotCompilable, RError) as exc:
            prepared.note = f"scored in R: {exc}"
        return prepared

    def _parity_gaps(self, prepared: list[_Prepared]) -> dict[VersionKey, float | RError]:
        """Largest |compiled - R| of each compiled scorer, R scoring in one child process."""
        checked = [p for p in prepared if p.compiled is not None and self.compile]
        samples = [parity_sample(p.compiled, rows=self.parity_rows) for p in checked if p.compiled]
        jobs = [
            ScoringJob(rds=p.candidate.path, features=p.features, rows=sample)
            for p, sample in zip(checked, samples, strict=True)
        ]
        try:
            r_results = predict_in_child(jobs)
        except RError as exc:
            r_results = [exc] * len(jobs)
        gaps: dict[VersionKey, float | RError] = {}
        for p, sample, r_prob in zip(checked, samples, r_results, strict=True):
            assert p.compiled is not None
            if isinstance(r_prob, RError):
                gaps[p.key] = r_prob
            else:
                gaps[p.key] = float(np.max(np.abs(p.compiled.score(sample) - r_prob)))
        return gaps

    def _finish(self, p: _Prepared, gap: float | RError | None) -> ServedVersion | LoadFailure:
        compiled, name = p.compiled, p.candidate.path.name
        if isinstance(gap, RError):
            return LoadFailure(p.key.version, f"R cannot score {name}: {gap}")
        if compiled is not None and not self.compile:
            p.note = "scored in R: compiled scoring is off (SCORING=r)"
        # `not gap <= tol` rather than `gap > tol`: a NaN gap (R or numpy produced NaN) fails.
        elif compiled is not None and gap is not None and not gap <= self.parity_tolerance:
            p.note = (
                f"scored in R: the compiled scorer differs from R by {gap:.3g} on the parity sample"
            )
        elif compiled is not None and gap is not None:
            return self._served(p, compiled, compiled.imputed, gap=gap)
        nullable = compiled.imputed if compiled is not None else frozenset()
        try:  # warm R up (bake loads recipes on first use) and prove it can score
            self.r.run(p.r_scorer.score, np.ones((1, len(p.features))))
        except RError as exc:
            return LoadFailure(p.key.version, f"R cannot score {name}: {exc}")
        return self._served(p, p.r_scorer, nullable, gap=gap)

    def _served(
        self, p: _Prepared, scorer: Scorer, nullable: frozenset[str], *, gap: float | None
    ) -> ServedVersion:
        return ServedVersion(
            version=p.key.version,
            schema=FeatureSchema(features=p.features, nullable=nullable, max_rows=self.max_rows),
            scorer=scorer,
            threshold=p.candidate.threshold,
            sha256=p.key.sha256,
            created_at=p.candidate.created_at,
            parity_gap=gap,
            note=p.note,
        )
