"""A seeded, stratified train/holdout split that copies the CSV's lines unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from agi_credit.training.errors import TrainingError

__all__ = ["Split", "read_columns", "stratified_split"]


@dataclass(frozen=True, slots=True)
class Split:
    train_path: Path
    holdout_path: Path
    train_rows: int
    holdout_rows: int
    holdout_target: np.ndarray


def _holdout_mask(target: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(target), dtype=bool)
    for label in (0, 1):
        rows = np.flatnonzero(target == label)
        take = round(len(rows) * fraction)
        if len(rows) >= 2:
            take = min(max(take, 1), len(rows) - 1)  # both sides keep every class
        mask[rng.permutation(rows)[:take]] = True
    return mask


def stratified_split(source: Path, out_dir: Path, *, holdout_fraction: float, seed: int) -> Split:
    """Write `train.csv` and `holdout.csv` into `out_dir`: every data line of `source` goes
    to exactly one of them, byte for byte, with each TARGET class split in proportion."""
    target = read_columns(source, ["TARGET"])["TARGET"]
    if np.isnan(target).any() or not np.isin(target, (0, 1)).all():
        raise TrainingError("TARGET must be 0 or 1 in every row")
    counts = np.bincount(target.astype(np.int64), minlength=2)
    if counts.min() < 2:
        raise TrainingError(
            f"too few rows to split: {counts[0]} non-defaults and "
            f"{counts[1]} defaults (need at least 2 of each)"
        )
    mask = _holdout_mask(target.astype(np.int64), holdout_fraction, seed)

    lines = source.read_bytes().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    if rows and not rows[-1].strip():
        rows.pop()
    if len(rows) != len(target):
        raise TrainingError(
            f"{source} has {len(rows)} lines but {len(target)} CSV rows: "
            "quoted line breaks inside values are not supported"
        )
    if rows and not rows[-1].endswith(b"\n"):
        rows[-1] += b"\n"
    train_path, holdout_path = out_dir / "train.csv", out_dir / "holdout.csv"
    for path, keep in ((train_path, ~mask), (holdout_path, mask)):
        with path.open("wb") as out:
            out.write(header if header.endswith(b"\n") else header + b"\n")
            out.writelines(row for row, k in zip(rows, keep, strict=True) if k)
    return Split(
        train_path=train_path,
        holdout_path=holdout_path,
        train_rows=int((~mask).sum()),
        holdout_rows=int(mask.sum()),
        holdout_target=target[mask].astype(np.int64),
    )


def read_columns(path: Path, columns: list[str]) -> dict[str, np.ndarray]:
    """The named columns of a CSV as float64 arrays (missing values as NaN)."""
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                include_columns=columns, column_types=dict.fromkeys(columns, pa.float64())
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise TrainingError(
            f"cannot read {', '.join(columns)} from {path.name}: {str(exc).splitlines()[0]}"
        ) from exc
    return {name: pc.fill_null(table.column(name), float("nan")).to_numpy() for name in columns}
