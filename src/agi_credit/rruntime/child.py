"""R's own predictions from a short-lived Rscript process.

The predictor checks each compiled scorer against R. Doing that in a child keeps recipes and
its dependencies (~190 MB) out of the serving process when every version is compiled, and
an R crash out of it too. One child scores every job it is given, so a cold start with many
versions pays R's start-up once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agi_credit.rruntime.errors import RError

HELPERS_R = Path(__file__).with_name("helpers.R")
R_PACKAGES = "r-base-core r-cran-recipes r-cran-data.table r-cran-jsonlite"
"""Debian's packages of R and of what train.R and the helpers use."""


def rscript_path() -> str:
    """The Rscript executable; `RError` that says how to install R when there is none."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise RError(f"Rscript not found: install R (as root: apt-get install {R_PACKAGES})")
    return rscript


@dataclass(frozen=True, slots=True)
class ScoringJob:
    rds: Path
    features: tuple[str, ...]
    rows: np.ndarray
    """[rows, features] float64; NaN is passed to R as NA."""


def predict_in_child(
    jobs: list[ScoringJob], *, timeout: float = 120.0
) -> list[np.ndarray | RError]:
    """P(default) for each job as R computes it, or the R error of that job."""
    if not jobs:
        return []
    rscript = rscript_path()
    with tempfile.TemporaryDirectory(prefix="agi-credit-r-") as tmp:
        work = Path(tmp)
        spec: list[dict[str, object]] = []
        for i, job in enumerate(jobs):
            rows = np.asarray(job.rows, dtype="<f8")
            (work / f"in-{i}.bin").write_bytes(rows.T.tobytes())  # column-major, as R reads
            spec.append(
                {
                    "rds": str(job.rds),
                    "features": list(job.features),
                    "rows": len(rows),
                    "input": str(work / f"in-{i}.bin"),
                    "output": str(work / f"out-{i}.bin"),
                    "status": str(work / f"status-{i}.txt"),
                }
            )
        (work / "jobs.json").write_text(json.dumps(spec))
        code = f'source("{HELPERS_R}"); agi_score_files("{work / "jobs.json"}")'
        try:
            done = subprocess.run(
                [rscript, "--vanilla", "-e", code],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, "TZ": os.environ.get("TZ", "UTC")},
            )
        except subprocess.TimeoutExpired as exc:
            raise RError(f"Rscript did not finish in {timeout:.0f} s") from exc
        if done.returncode != 0:
            raise RError(f"Rscript failed: {done.stderr.strip()[-500:]}")
        results: list[np.ndarray | RError] = []
        for entry in spec:
            status = Path(str(entry["status"])).read_text().strip()
            if status != "ok":
                results.append(RError(f"R predict failed: {status[:500]}"))
                continue
            results.append(np.fromfile(str(entry["output"]), dtype="<f8"))
        return results
