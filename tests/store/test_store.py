"""The model store: metadata.json contract, atomic transactions, governance."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from agi_credit.store import (
    EmptyStore,
    ModelEntry,
    ModelStore,
    Status,
    StoreError,
    VersionNotFound,
    VersionRejected,
    utc_now,
)
from tests.conftest import snapshot
from tests.servers import run_cli
from tests.store.registered import FEATURES, register

# The origin's metadata.json, verbatim from its README.
ORIGIN_METADATA = {
    "current_version": "v2",
    "models": [
        {"created_at": "2026-02-22 01:34:15", "features": FEATURES, "version": "v1"},
        {"created_at": "2026-02-22 02:05:17", "features": FEATURES, "version": "v2"},
    ],
}


def _register_in_child(root: str) -> str:
    return register(ModelStore(Path(root)), actor="child")


def test_a_new_store_is_empty(store: ModelStore) -> None:
    metadata = store.read()
    assert metadata.current_version is None and metadata.models == []
    with pytest.raises(EmptyStore, match="has no models yet"):
        store.current()
    with pytest.raises(EmptyStore):
        store.promote("v1")
    with pytest.raises(EmptyStore):
        store.rollback()


def test_register_writes_the_artifact_and_the_entry(store: ModelStore) -> None:
    version = register(store)
    entry = store.get(version)
    assert version == "v1"
    assert entry.status is Status.ACTIVE
    assert entry.artifact is not None
    assert (store.root / entry.artifact.path).read_bytes() == b"an R model"
    assert entry.artifact.size_bytes == len(b"an R model")
    assert store.read().current_version == "v1"


def test_artifacts_are_read_only_once_written(store: ModelStore) -> None:
    register(store)
    assert store.artifact_path("v1").stat().st_mode & 0o222 == 0


def test_history_records_every_change_with_time_and_actor(store: ModelStore) -> None:
    register(store, actor="alice")
    register(store, promote=False, actor="alice")
    store.promote("v2", actor="bob", reason="committee approval")
    store.rollback(actor="carol")
    store.reject("v2", reason="bias found", actor="dave")
    events = [(e.action, e.version, e.actor) for e in store.read().history]
    assert events == [
        ("register", "v1", "alice"),
        ("promote", "v1", "alice"),
        ("register", "v2", "alice"),
        ("promote", "v2", "bob"),
        ("rollback", "v1", "carol"),
        ("reject", "v2", "dave"),
    ]
    history = store.read().history
    assert history[3].reason == "committee approval"
    assert history[4].previous_version == "v2"
    assert all(len(e.at) == len("YYYY-MM-DD HH:MM:SS") for e in history)


def test_promote_makes_the_old_version_archived(store: ModelStore) -> None:
    register(store)
    register(store)
    metadata = store.read()
    assert [metadata.status_of(m) for m in metadata.models] == [Status.ARCHIVED, Status.ACTIVE]


def test_promote_refuses_unknown_and_rejected_versions(store: ModelStore) -> None:
    register(store)
    register(store, promote=False)
    with pytest.raises(VersionNotFound, match="unknown version v7; the store has: v1, v2"):
        store.promote("v7")
    store.reject("v2", reason="fails fairness review")
    with pytest.raises(VersionRejected, match=r"v2 was rejected \(fails fairness review\)"):
        store.promote("v2")


def test_the_current_version_cannot_be_rejected(store: ModelStore) -> None:
    register(store)
    with pytest.raises(StoreError, match="v1 is the current version"):
        store.reject("v1", reason="x")


def test_rollback_walks_back_through_earlier_active_versions(store: ModelStore) -> None:
    for _ in range(3):
        register(store)
    assert store.rollback().version == "v2"
    assert store.rollback().version == "v1"
    with pytest.raises(StoreError, match="no earlier active version"):
        store.rollback()


def test_rollback_skips_candidates_and_rejected_versions(store: ModelStore) -> None:
    register(store)  # v1 active
    register(store, promote=False)  # v2 candidate, never active
    register(store)  # v3 active
    register(store)  # v4 active
    store.promote("v4")
    store.reject("v3", reason="drift")
    assert store.rollback().version == "v1"


def test_the_origins_metadata_is_read_unchanged(store: ModelStore) -> None:
    store.root.mkdir(parents=True)
    store.metadata_path.write_text(json.dumps(ORIGIN_METADATA))
    metadata = store.read()
    assert metadata.current_version == "v2"
    assert [m.version for m in metadata.models] == ["v1", "v2"]
    assert metadata.models[0].features == FEATURES
    assert metadata.status_of(metadata.models[1]) is Status.ACTIVE
    # Governance works on it, and keeps the origin's fields as they were.
    assert store.rollback().version == "v1"
    written = json.loads(store.metadata_path.read_text())
    assert written["models"][0]["created_at"] == "2026-02-22 01:34:15"
    assert written["current_version"] == "v1"
    assert register(store) == "v3"


def test_a_failed_transaction_leaves_the_store_exactly_as_it_was(store: ModelStore) -> None:
    register(store)
    before = snapshot(store.root)
    staged = store.root.parent / "x.rds"
    staged.write_bytes(b"model")
    with pytest.raises(RuntimeError, match="boom"), store.transaction(actor="t") as txn:
        version = txn.next_version()
        txn.install_artifact(staged, version)
        txn.create_report_dir(version)
        txn.add(ModelEntry(version=version, created_at=utc_now(), features=FEATURES))
        txn.promote(version)
        raise RuntimeError("boom")
    assert snapshot(store.root) == before


def test_a_commit_stands_when_only_the_directory_sync_fails(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """metadata.json is replaced before its directory is synced: from then on the commit is
    visible to readers, and the artifact it names must not be undone."""
    register(store)
    root = os.stat(store.root)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        status = os.fstat(fd)
        if (status.st_dev, status.st_ino) == (root.st_dev, root.st_ino):
            raise OSError(errno.EIO, "I/O error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    version = register(store)
    monkeypatch.undo()
    assert store.read().current_version == version == "v2"
    assert store.artifact_path(version).read_bytes() == b"an R model"


def test_versions_are_never_reused_even_when_an_entry_is_lost(store: ModelStore) -> None:
    register(store)
    register(store)
    # Someone edits metadata.json by hand and drops v2: its file still holds the name.
    metadata = store.read()
    metadata.models = [m for m in metadata.models if m.version != "v2"]
    metadata.current_version = "v1"
    store.metadata_path.write_text(metadata.to_json())
    assert register(store) == "v3"


def test_no_temporary_files_are_left_behind(store: ModelStore) -> None:
    register(store)
    register(store)
    leftovers = [p.name for p in store.root.iterdir() if p.name.startswith(".metadata")]
    assert leftovers == []


def test_a_corrupt_metadata_file_is_reported(store: ModelStore) -> None:
    store.root.mkdir(parents=True)
    store.metadata_path.write_text('{"current_version": "v1", "models": [{"version": 1}]}')
    with pytest.raises(StoreError, match="is not a valid model store"):
        store.read()


def test_eight_processes_registering_at_once_get_eight_versions(store: ModelStore) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(8) as pool:
        versions = pool.map(_register_in_child, [str(store.root)] * 8)
    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 9)]
    metadata = json.loads(store.metadata_path.read_text())
    assert sorted(m["version"] for m in metadata["models"]) == sorted(versions)
    assert len(list(store.models_dir.iterdir())) == 8


def test_cli_models_lists_versions_as_table_and_json(store: ModelStore) -> None:
    register(store)
    register(store, promote=False, auc=0.58)
    table = run_cli("models", "--store", store.root)
    assert table.returncode == 0, table.stderr
    assert "current version: v1" in table.stdout
    assert "candidate" in table.stdout and "0.5800" in table.stdout
    as_json = run_cli("models", "--store", store.root, "--json")
    assert json.loads(as_json.stdout)["current_version"] == "v1"


def test_cli_governance_commands_and_their_errors(store: ModelStore) -> None:
    empty = run_cli("rollback", "--store", store.root)
    assert empty.returncode == 1 and "has no models yet" in empty.stderr
    register(store)
    register(store, promote=False)
    assert run_cli("promote", "v2", "--store", store.root).returncode == 0
    assert store.read().current_version == "v2"
    unknown = run_cli("promote", "v9", "--store", store.root)
    assert unknown.returncode == 1 and "unknown version v9" in unknown.stderr
    bad_name = run_cli("promote", "../v1", "--store", store.root)
    assert bad_name.returncode == 1 and "invalid version name '../v1'" in bad_name.stderr
    back = run_cli("rollback", "--store", store.root, "--actor", "ops")
    assert back.returncode == 0 and "current version is now v1" in back.stdout
    assert store.read().history[-1].actor == "ops"
    rejected = run_cli("reject", "v2", "--reason", "unstable", "--store", store.root)
    assert rejected.returncode == 0
    refused = run_cli("promote", "v2", "--store", store.root)
    assert refused.returncode == 1 and "was rejected (unstable)" in refused.stderr


def test_a_lost_metadata_file_is_not_taken_for_a_new_store(store: ModelStore) -> None:
    """Writing a fresh metadata.json beside the old artifacts would drop their history."""
    register(store)
    store.metadata_path.unlink()
    before = snapshot(store.root)
    with pytest.raises(StoreError, match=r"missing but .* holds 1 model file"):
        store.read()
    with pytest.raises(StoreError, match=r"restore metadata\.json from a backup"):
        register(store)
    assert snapshot(store.root) == before
