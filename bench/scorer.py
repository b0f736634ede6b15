"""The compiled scorer alone, against the form it replaced (`make bench-scorer`).

    .venv/bin/python bench/scorer.py [--repeat 7]

Times `CompiledGlm.score` (a running sum over the features and an exp made of IEEE-754
operations: batch-invariant) and, in the same run on the same rows, the form used up to
a272625 (`logit(intercept + baked @ beta)` with numpy's exp: a BLAS product whose last bit
depends on the batch), at 1, 100, 10,000, 100,000 and 1,000,000 rows; the best of
`--repeat` rounds each, alternating the two. Also counts the rows of a 100,000-row batch
whose old score differs from the same row scored alone, and checks that the new one has
none. The model is the origin's shape with coefficients of a real fit; no R is needed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from agi_credit.predictor.scorers import CompiledGlm

FEATURES = ("AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE")
MEDIANS = np.array([147150.0, 513531.0, -15750.0, 450000.0])
MEANS = np.array([168797.9, 599026.0, -16037.0, 538396.2])
EPS = float(np.finfo(np.float64).eps)
SDS = np.array([237123.1, 402490.8, 4363.989, 369446.5])
COMPILED = CompiledGlm(
    features=FEATURES,
    steps=(("impute", MEDIANS, MEDIANS), ("normalize", MEANS, SDS)),
    intercept=-2.4613,
    beta=np.array([-0.0301, 0.4187, 0.2123, -0.5189]),
)


def before(matrix: np.ndarray) -> np.ndarray:
    """The scorer as of a272625: BLAS and numpy's exp."""
    x = np.where(np.isnan(matrix), MEDIANS, matrix)
    eta = COMPILED.intercept + ((x - MEANS) / SDS) @ COMPILED.beta
    odds = np.where(eta < -30, EPS, np.where(eta > 30, 1 / EPS, np.exp(np.clip(eta, -30, 30))))
    return np.asarray(odds / (1 + odds))


def applicants(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = np.column_stack(
        [
            rng.lognormal(11.9, 0.5, rows),
            rng.lognormal(13.0, 0.7, rows),
            -rng.uniform(7500, 25000, rows),
            rng.lognormal(12.9, 0.7, rows),
        ]
    )
    matrix[rng.random(rows) < 0.01, 3] = np.nan
    return matrix


def best_seconds(score: Callable[[np.ndarray], np.ndarray], matrix: np.ndarray) -> float:
    calls = max(1, 20_000 // len(matrix))  # small batches: time many calls, report one
    started = time.perf_counter()
    for _ in range(calls):
        score(matrix)
    return (time.perf_counter() - started) / calls


def batch_dependent_rows(score: Callable[[np.ndarray], np.ndarray], matrix: np.ndarray) -> int:
    together = score(matrix)
    alone = np.array([score(matrix[i : i + 1])[0] for i in range(len(matrix))])
    return int(np.count_nonzero(together.view(np.int64) != alone.view(np.int64)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(
        f"bench-scorer {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, numpy {np.__version__}"
    )
    print(f"{'rows':>10}{'before µs':>14}{'after µs':>14}{'after/before':>14}{'after rows/s':>16}")
    for rows in (1, 100, 10_000, 100_000, 1_000_000):
        matrix = applicants(rows)
        old, new = [], []
        for _ in range(args.repeat):
            old.append(best_seconds(before, matrix))
            new.append(best_seconds(COMPILED.score, matrix))
        b, a = min(old), min(new)
        print(f"{rows:>10,}{b * 1e6:>14.1f}{a * 1e6:>14.1f}{a / b:>14.2f}{rows / a:>16,.0f}")
    matrix = applicants(100_000, seed=1)
    old_rows = batch_dependent_rows(before, matrix)
    new_rows = batch_dependent_rows(COMPILED.score, matrix)
    print(
        f"\nrows of a 100,000-row batch scored differently alone: before {old_rows:,}, "
        f"after {new_rows:,}"
    )
    agree = np.count_nonzero(before(matrix) == COMPILED.score(matrix))
    print(f"before and after give the same bits on {agree:,} of {len(matrix):,} rows")
    return 1 if new_rows else 0


if __name__ == "__main__":
    raise SystemExit(main())
