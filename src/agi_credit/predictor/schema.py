"""The input schema of one served version: its features, in order, and which of them may
be missing (the model imputes them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agi_credit.predictor.errors import InvalidRequest, shown_list


@dataclass(frozen=True, slots=True)
class FeatureSchema:
    features: tuple[str, ...]
    nullable: frozenset[str]
    """Features the model imputes: NaN (a JSON null in v1) is accepted for these."""
    max_rows: int

    def check_rows(self, rows: int) -> None:
        if rows == 0:
            raise InvalidRequest("empty batch: send at least one row")
        if rows > self.max_rows:
            raise InvalidRequest(
                f"batch of {rows:,} rows exceeds the limit of {self.max_rows:,} (MAX_BATCH_ROWS)"
            )

    def check_names(self, names: list[str]) -> None:
        missing = [f for f in self.features if f not in names]
        unexpected = [n for n in names if n not in self.features]
        if missing:
            raise InvalidRequest(f"missing features: {missing}")
        if unexpected:
            raise InvalidRequest(f"unexpected features: {shown_list(unexpected)}")

    def check_values(self, matrix: np.ndarray) -> None:
        """`matrix` is [rows, features] float64 in feature order."""
        finite = np.isfinite(matrix)
        if finite.all():
            return
        for j, feature in enumerate(self.features):
            column = matrix[:, j]
            if np.isinf(column).any():
                raise InvalidRequest(f"feature {feature} has infinite values")
            if feature not in self.nullable and np.isnan(column).any():
                raise InvalidRequest(
                    f"feature {feature} has missing (NaN/null) values; this model cannot impute it"
                )

    def metadata(self) -> list[dict[str, object]]:
        """v2 metadata of the inputs: one FP64 [-1] tensor per feature."""
        return [{"name": f, "datatype": "FP64", "shape": [-1]} for f in self.features]
