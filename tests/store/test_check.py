"""`agi-credit store check [--fix]`: orphans of killed jobs are found and removed, damage is
reported and never touched, a running job's files are left alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agi_credit.store import ModelStore, StoreError, check_store
from tests.conftest import snapshot
from tests.mounts import read_only_mount
from tests.servers import WORKDIR, clean_env, run_cli
from tests.store.registered import register


def leave_orphans(store: ModelStore, version: str) -> set[Path]:
    """What a job killed between its artifact and its commit leaves behind."""
    store.artifact_path(version).write_bytes(b"an R model")
    store.report_dir(version).mkdir(parents=True)
    (store.report_dir(version) / "model_card.md").write_text("# card")
    (store.staging_dir / "job-0123456789ab" / "output").mkdir(parents=True)
    (store.root / ".metadata.json.k2j3h4.tmp").write_text("{")
    return {
        Path("models") / f"model_{version}.rds",
        Path("reports") / version,
        Path("staging") / "job-0123456789ab",
        Path(".metadata.json.k2j3h4.tmp"),
    }


def test_a_store_written_by_transactions_is_clean(store: ModelStore) -> None:
    register(store)
    register(store)
    report = check_store(store)
    assert report.clean and report.orphans == [] and report.damage == []


def test_orphans_are_reported_then_fixed_and_their_version_never_reused(
    store: ModelStore,
) -> None:
    register(store)
    before = store.read()
    orphans = leave_orphans(store, "v2")
    assert {o.path for o in check_store(store).orphans} == orphans

    fixed = check_store(store, fix=True, actor="ops")

    assert {o.path for o in fixed.removed} == orphans
    assert fixed.clean and check_store(store).clean
    after = store.read()
    assert after.models == before.models and after.current_version == "v1"
    discard = after.history[-1]
    assert (discard.action, discard.version, discard.actor) == ("discard", "v2", "ops")
    assert register(store) == "v3"


def test_damage_is_reported_and_never_removed(store: ModelStore) -> None:
    register(store)
    register(store)
    store.artifact_path("v1").unlink()
    store.artifact_path("v2").chmod(0o644)
    store.artifact_path("v2").write_bytes(b"something else")
    before = snapshot(store.root)

    report = check_store(store, fix=True)

    assert report.damage == [
        "v1: models/model_v1.rds is missing",
        "v2: models/model_v2.rds does not match its sha256",
    ]
    assert not report.clean and report.removed == []
    assert snapshot(store.root) == before


def test_a_running_jobs_staging_directory_is_not_an_orphan(
    store: ModelStore, tmp_path: Path
) -> None:
    """The job lives in another process, holding its staging directory as jobs do."""
    register(store)
    holder = tmp_path / "hold.py"
    holder.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from agi_credit.store import ModelStore\n"
        "with ModelStore(Path(sys.argv[1])).staging() as path:\n"
        "    print(path, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, holder, store.root],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=WORKDIR,
        env=clean_env(),
    ) as job:
        assert job.stdout is not None and job.stdin is not None
        staging = Path(job.stdout.readline().strip())
        report = check_store(store, fix=True)
        assert staging.is_dir() and report.clean and report.removed == []
        job.kill()  # SIGKILL: nothing unwinds, the kernel drops its lock
    orphan = check_store(store).orphans
    assert [o.path for o in orphan] == [staging.relative_to(store.root)]


@pytest.mark.parametrize(
    "content", [b'{"current_version": "v1", "models": [', b"\x00\xff garbage", b"[]"]
)
def test_a_damaged_metadata_file_is_reported_and_fix_refuses(
    store: ModelStore, content: bytes
) -> None:
    register(store)
    store.metadata_path.write_bytes(content)
    leave_orphans(store, "v2")
    before = snapshot(store.root)

    report = check_store(store)
    assert not report.clean and "metadata.json" in report.damage[0]
    with pytest.raises(StoreError, match=r"metadata\.json"):
        check_store(store, fix=True)
    assert snapshot(store.root) == before


def test_a_read_only_store_is_checked_and_fix_says_why_it_cannot(store: ModelStore) -> None:
    register(store)
    leave_orphans(store, "v2")
    with read_only_mount(store.root):
        assert len(check_store(store).orphans) == 4
        with pytest.raises(StoreError, match="Read-only file system"):
            check_store(store, fix=True)


def test_the_cli_exits_1_until_the_store_is_clean(store: ModelStore) -> None:
    register(store)
    leave_orphans(store, "v2")

    found = run_cli("store", "check", "--store", store.root)
    fixed = run_cli("store", "check", "--fix", "--store", store.root)
    clean = run_cli("store", "check", "--store", store.root)

    assert found.returncode == 1
    assert "orphan models/model_v2.rds: artifact of an unregistered version" in found.stdout
    assert "agi-credit store check --fix" in found.stderr
    assert fixed.returncode == 0 and "removed staging/job-0123456789ab" in fixed.stdout
    assert clean.returncode == 0 and "the store is clean" in clean.stdout


def test_the_cli_reports_damage_with_what_to_do(store: ModelStore) -> None:
    register(store)
    store.artifact_path("v1").unlink()
    result = run_cli("store", "check", "--fix", "--store", store.root)
    assert result.returncode == 1
    assert "damaged v1: models/model_v1.rds is missing" in result.stdout
    assert "restore the damaged files from a backup" in result.stderr
