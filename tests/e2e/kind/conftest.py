"""The cluster under tests/e2e/kind: `--kind-namespace` (and `--kind-context`) name it."""

from __future__ import annotations

import pytest

from tests.e2e.kind.cluster import Cluster, unreachable_reason


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Cluster:
    namespace = request.config.getoption("--kind-namespace")
    context = request.config.getoption("--kind-context")
    if reason := unreachable_reason(context):
        pytest.skip(reason)
    return Cluster(namespace, context)
