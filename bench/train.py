"""Benchmark of the training job on the full-size synthetic file (`make bench-train`).

Generates 307,511 rows, runs `agi-credit train` on them as a user would, and prints
generation time, job time, model size and peak memory of each step. In the same run it
fits the origin's unstripped model on the same data as the baseline, and compares file
size and readRDS time. Exits 1 when a target of the issue is missed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agi_credit.data.reference import OFFICIAL_ROWS

ROWS = OFFICIAL_ROWS
TARGETS = {"generation_s": 30.0, "job_s": 60.0, "rds_bytes": 1_000_000}
REPO = Path(__file__).resolve().parents[1]

ORIGIN_STYLE_R = r"""
suppressPackageStartupMessages({library(data.table); library(recipes)})
f <- c("AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE")
d <- as.data.frame(fread(Sys.getenv("DATA_PATH"), select = c("TARGET", f),
                         colClasses = list(numeric = f)))
d$TARGET <- factor(d$TARGET)
rec <- prep(recipe(TARGET ~ ., data = d) |> step_impute_median(all_predictors()) |>
            step_normalize(all_predictors()))  # retain = TRUE: the data stays inside
fit <- glm(TARGET ~ ., data = bake(rec, NULL), family = binomial())
saveRDS(list(recipe = rec, fit = fit), Sys.getenv("OUT"))
"""

READ_TIME_R = r"""
p <- commandArgs(TRUE)[1]
invisible(readRDS(p))
t <- system.time(for (i in 1:5) invisible(readRDS(p)))[["elapsed"]] / 5
cat(t)
"""


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run `cmd`; return (seconds, peak RSS in bytes of its whole process tree)."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, env={**os.environ, "TZ": "UTC", **(env or {})})
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return seconds, usage.ru_maxrss * 1024


def read_seconds(rds: Path) -> float:
    out = subprocess.run(
        ["Rscript", "--vanilla", "-e", READ_TIME_R, str(rds)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    )
    return float(out.stdout)


def main() -> int:
    agi_credit = [sys.executable, "-m", "agi_credit"]
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        data, store = work / "application_train.csv", work / "store"
        gen_s, gen_rss = run([*agi_credit, "gen-data", "--rows", str(ROWS), "--out", str(data)])
        job_s, job_rss = run(
            [*agi_credit, "train", "--data", str(data), "--store", str(store)],
            env={"MIN_AUC": "0.5"},
        )
        metadata = json.loads((store / "metadata.json").read_text())
        entry = metadata["models"][-1]
        ours = store / entry["artifact"]["path"]
        baseline = work / "origin_style.rds"
        base_s, _ = run(
            ["Rscript", "--vanilla", "-e", ORIGIN_STYLE_R],
            env={"DATA_PATH": str(data), "OUT": str(baseline)},
        )
        ours_read, base_read = read_seconds(ours), read_seconds(baseline)
        ours_size, base_size = ours.stat().st_size, baseline.stat().st_size

    mb = 1024 * 1024
    print(f"\nbench-train: {ROWS:,} synthetic rows, {os.cpu_count()} cores")
    print(f"{'':34}{'ours':>14}{'baseline':>14}{'ratio':>9}")
    print(f"{'generation (s)':34}{gen_s:14.1f}")
    print(f"{'training job, end to end (s)':34}{job_s:14.1f}")
    print(f"{'origin-style fit, same file (s)':34}{'':14}{base_s:14.1f}")
    print(f"{'peak RSS, generation (MB)':34}{gen_rss / mb:14.0f}")
    print(f"{'peak RSS, training job (MB)':34}{job_rss / mb:14.0f}")
    print(f"{'model .rds (bytes)':34}{ours_size:14,}{base_size:14,}{base_size / ours_size:8.0f}x")
    print(
        f"{'readRDS (ms)':34}{ours_read * 1000:14.1f}{base_read * 1000:14.1f}"
        f"{base_read / max(ours_read, 1e-6):8.0f}x"
    )
    print(f"{'holdout AUC':34}{entry['metrics']['auc']:14.4f}")
    print(
        "\nbaseline: the origin's model, recipe prepped with retain = TRUE and an "
        "unstripped glm,\nfitted on the same file in the same run."
    )
    results = {"generation_s": gen_s, "job_s": job_s, "rds_bytes": ours_size}
    missed = 0
    for name, limit in TARGETS.items():
        ok = results[name] <= limit
        missed += not ok
        print(f"target {name} <= {limit:,}: {results[name]:,.1f} {'PASS' if ok else 'MISS'}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
