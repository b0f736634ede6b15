"""Fixtures of the predictor tests: a real `agi-credit serve` on the serving store, and the
registry built in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agi_credit.predictor.loader import VersionLoader
from agi_credit.predictor.registry import VersionRegistry
from agi_credit.rruntime import RThread
from agi_credit.store import DEFAULT_DECISION_THRESHOLD, ModelStore
from tests.servers import Server, running_server

MakeRegistry = Callable[..., VersionRegistry]


@pytest.fixture
def make_registry() -> MakeRegistry:
    """`make_registry(store=...)` or `make_registry(model_path=...)`: the predictor's
    registry in this process, R on its own thread, as `agi-credit serve` builds it."""

    def make(*, store: ModelStore | None = None, model_path: Path | None = None) -> VersionRegistry:
        loader = VersionLoader(
            RThread(), max_rows=10, parity_rows=100, parity_tolerance=1e-9, compile=True
        )
        return VersionRegistry(
            loader, store=store, model_path=model_path, default_threshold=DEFAULT_DECISION_THRESHOLD
        )

    return make


@pytest.fixture(scope="module")
def server(serving_store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on the (unchanged) serving store, shared by a test module."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(["--store", str(serving_store.root)], log) as running:
        yield running
