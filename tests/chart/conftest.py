"""Fixtures of the chart tests: each values file is rendered once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.chart import ALL_VALUES, Rendered, case_name, load_values, rendered_case

PROD_VALUES = [p for p in ALL_VALUES if load_values(p).get("env", "prod") == "prod"]


@pytest.fixture(scope="session", params=ALL_VALUES, ids=case_name)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    """The chart rendered with one values file (charts/agi-credit/ci/ and tests/chart/values/)."""
    path: Path = request.param
    return rendered_case(case_name(path))


@pytest.fixture(scope="session", params=PROD_VALUES, ids=case_name)
def rendered_prod(request: pytest.FixtureRequest) -> Rendered:
    """The chart rendered with each values file that keeps the default, `env: prod`."""
    path: Path = request.param
    return rendered_case(case_name(path))
