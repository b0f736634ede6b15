"""A damaged model store under a running predictor: it keeps serving what it has loaded,
reports the problem in its logs, its metrics and `/v2/models/agi-credit`, and `agi-credit`
commands refuse to write, saying why."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from agi_credit.store import ModelStore
from tests.conftest import snapshot, wait_until
from tests.mounts import fill, read_only_mount, tmpfs
from tests.servers import Server, run_cli, running_server

NOTICED_WITHIN = 10.0
"""Seconds the predictor may take to notice a change to the store, and to report it."""

WRITING_COMMANDS = {
    "promote": ("promote", "v1"),
    "rollback": ("rollback",),
    "reject": ("reject", "v3", "--reason", "test"),
    "store check --fix": ("store", "check", "--fix"),
}


def parameters(server: Server) -> dict[str, Any]:
    metadata = httpx.get(f"{server.url}/v2/models/agi-credit", timeout=10).json()
    return dict(metadata["parameters"])


def v2_store_problem(server: Server) -> str | None:
    problem = parameters(server)["model_versions"]["v2"]["store_problem"]
    return None if problem is None else str(problem)


def gauge(server: Server, kind: str) -> float:
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f'agi_credit_store_problems{{kind="{kind}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"no agi_credit_store_problems{{kind={kind!r}}} metric")


def events(server: Server, name: str) -> list[dict[str, Any]]:
    return [record for record in server.records() if record.get("event") == name]


METADATA_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:100]),
    "not JSON": lambda path: path.write_text("this is not JSON"),
    "not UTF-8": lambda path: path.write_bytes(b"\xff\xfe{}"),
    "not a store": lambda path: path.write_text('{"models": "none"}'),
    "deleted": lambda path: path.unlink(),
}


@pytest.mark.parametrize("damage", list(METADATA_DAMAGE))
def test_a_damaged_metadata_file_keeps_the_loaded_versions_served_and_is_reported(
    damage: str, store_copy: ModelStore, tmp_path: Path
) -> None:
    good = store_copy.metadata_path.read_bytes()
    with running_server(["--store", str(store_copy.root)], tmp_path / "serve.log") as server:
        METADATA_DAMAGE[damage](store_copy.metadata_path)
        assert wait_until(lambda: parameters(server)["reload_error"] is not None, NOTICED_WITHIN)

        assert server.served_version() == "v2"
        reported = parameters(server)
        assert "metadata.json" in reported["reload_error"]
        assert list(reported["model_versions"]) == ["v1", "v2", "v3"]
        assert gauge(server, "metadata") == 1
        assert events(server, "reload_failed")
        damaged = snapshot(store_copy.root)
        refused = run_cli("promote", "v1", "--store", store_copy.root)
        assert refused.returncode == 1 and "metadata.json" in refused.stderr
        assert snapshot(store_copy.root) == damaged

        store_copy.metadata_path.write_bytes(good)  # restored from a backup
        assert wait_until(lambda: parameters(server)["reload_error"] is None, NOTICED_WITHIN)
        assert gauge(server, "metadata") == 0
        assert server.served_version() == "v2"


ARTIFACT_DAMAGE: dict[str, Callable[[Path], None]] = {
    "replaced by garbage": lambda path: (path.chmod(0o644), path.write_bytes(b"\x1f\x8b junk")),
    "deleted": lambda path: path.unlink(),
}


@pytest.mark.parametrize("damage", list(ARTIFACT_DAMAGE))
def test_a_damaged_artifact_of_the_current_version_is_served_from_memory_and_reported(
    damage: str, store_copy: ModelStore, tmp_path: Path
) -> None:
    artifact = store_copy.artifact_path("v2")
    backup = tmp_path / "backup.rds"
    shutil.copy2(artifact, backup)
    with running_server(["--store", str(store_copy.root)], tmp_path / "serve.log") as server:
        ARTIFACT_DAMAGE[damage](artifact)
        assert wait_until(
            lambda: parameters(server)["model_versions"]["v2"]["store_problem"] is not None,
            NOTICED_WITHIN,
        )

        v2 = parameters(server)["model_versions"]["v2"]
        assert v2["status"] == "serving"
        assert "model_v2.rds" in v2["store_problem"]
        assert "serving the copy loaded before" in v2["store_problem"]
        assert server.served_version() == "v2"
        assert gauge(server, "artifact") == 1
        assert [e["model_version"] for e in events(server, "version_damaged")] == ["v2"]
        check = run_cli("store", "check", "--store", store_copy.root)
        assert check.returncode == 1 and "damaged v2: models/model_v2.rds" in check.stdout

        artifact.unlink(missing_ok=True)
        shutil.copy2(backup, artifact)  # restored from a backup
        assert wait_until(
            lambda: parameters(server)["model_versions"]["v2"]["store_problem"] is None,
            NOTICED_WITHIN,
        )
        assert gauge(server, "artifact") == 0
        assert run_cli("store", "check", "--store", store_copy.root).returncode == 0


def test_a_read_only_store_is_served_and_every_writing_command_says_why_it_cannot(
    store_copy: ModelStore, small_csv: Path, tmp_path: Path
) -> None:
    with (
        read_only_mount(store_copy.root),
        running_server(["--store", str(store_copy.root)], tmp_path / "serve.log") as server,
    ):
        before = snapshot(store_copy.root)
        for name, args in WRITING_COMMANDS.items():
            refused = run_cli(*args, "--store", store_copy.root)
            assert refused.returncode == 1, name
            assert "Read-only file system" in refused.stderr, (name, refused.stderr)
        trained = run_cli("train", "--data", small_csv, "--store", store_copy.root)
        assert trained.returncode == 1 and "Read-only file system" in trained.stderr
        assert snapshot(store_copy.root) == before
        assert server.served_version() == "v2"


def test_a_full_disk_refuses_writes_loses_nothing_and_serving_goes_on(
    store_copy: ModelStore, small_csv: Path, tmp_path: Path
) -> None:
    """The store on a small tmpfs, filled to the last byte."""
    with (
        tmpfs(store_copy.root, size="32m"),
        running_server(["--store", str(store_copy.root)], tmp_path / "serve.log") as server,
    ):
        before = snapshot(store_copy.root)
        fill(store_copy.root)
        for name, args in WRITING_COMMANDS.items():
            if name == "store check --fix":
                continue  # nothing to fix: it writes nothing
            refused = run_cli(*args, "--store", store_copy.root)
            assert refused.returncode == 1, name
            assert "No space left on device" in refused.stderr, (name, refused.stderr)
        trained = run_cli("train", "--data", small_csv, "--store", store_copy.root)
        assert trained.returncode == 1 and "No space left on device" in trained.stderr
        (store_copy.root / "filler").unlink()
        assert snapshot(store_copy.root) == before
        assert run_cli("store", "check", "--store", store_copy.root).returncode == 0
        assert server.served_version() == "v2"
        assert parameters(server)["reload_error"] is None
