"""The registry follows the store; its watcher survives any failure and says what failed."""

from __future__ import annotations

import os

import pytest
from prometheus_client import REGISTRY

from agi_credit.store import ModelStore, StoreMetadata
from tests.conftest import wait_until
from tests.predictor.conftest import MakeRegistry


def reload_errors(kind: str) -> float:
    return REGISTRY.get_sample_value("agi_credit_reload_errors_total", {"kind": kind}) or 0.0


def touch(path: os.PathLike[str]) -> None:
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_the_watcher_survives_an_unexpected_exception_and_reports_it(
    store_copy: ModelStore, make_registry: MakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = make_registry(store=store_copy)
    assert registry.refresh().current == "v2"
    registry.watch(0.05)
    try:
        real_read = store_copy.read

        def broken_read() -> StoreMetadata:
            raise RuntimeError("an unexpected bug")

        before = reload_errors("unexpected")
        monkeypatch.setattr(store_copy, "read", broken_read)
        touch(store_copy.metadata_path)
        assert wait_until(lambda: registry.reload_error is not None)
        assert registry.reload_error == "RuntimeError: an unexpected bug"
        assert reload_errors("unexpected") == before + 1
        assert registry.watching, "the watcher thread died"
        assert registry.state.current == "v2", "what was loaded is still served"

        monkeypatch.setattr(store_copy, "read", real_read)
        store_copy.promote("v1", actor="pytest")
        assert wait_until(lambda: registry.state.current == "v1")
        assert registry.reload_error is None
    finally:
        registry.stop()


def test_an_invalid_metadata_file_is_reported_and_what_was_loaded_kept(
    store_copy: ModelStore, make_registry: MakeRegistry
) -> None:
    registry = make_registry(store=store_copy)
    registry.refresh()
    registry.watch(0.05)
    try:
        good = store_copy.metadata_path.read_bytes()
        store_copy.metadata_path.write_bytes(good[: len(good) // 2])
        assert wait_until(lambda: registry.reload_error is not None)
        assert "not a valid model store" in (registry.reload_error or "")
        assert registry.state.current == "v2" and registry.watching
        store_copy.metadata_path.write_bytes(good)
        assert wait_until(lambda: registry.reload_error is None)
    finally:
        registry.stop()
