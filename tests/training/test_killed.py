"""A training job killed with SIGKILL at each step: the store keeps every committed byte,
the predictor keeps serving, `store check` finds what the job left, and the next job
succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agi_credit.store import ModelStore
from tests.conftest import snapshot
from tests.servers import WORKDIR, clean_env, run_cli, running_server

# What each death leaves besides the staging directory (the next version is v4).
LEFT_BEHIND = {
    "train.R": set(),
    "validation": set(),
    "commit": {"models/model_v4.rds", "reports/v4"},
    "metadata-write": {"models/model_v4.rds", "reports/v4", ".metadata.json.*.tmp"},
}


def killed_training(step: str, store: ModelStore, data: Path) -> int:
    """`agi-credit train` SIGKILLed at `step` (tests/training/killed_job.py), in its own
    process group; returns its exit status once the whole group is gone."""
    train = ["train", "--data", str(data), "--store", str(store.root)]
    with subprocess.Popen(
        [sys.executable, Path(__file__).with_name("killed_job.py"), step, *train],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=WORKDIR,
        env=clean_env({"MIN_AUC": "0"}),
        start_new_session=True,
    ) as job:
        status = job.wait(timeout=300)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # R, in the same group, is gone too
        try:
            os.killpg(job.pid, 0)
        except ProcessLookupError:
            return status
        time.sleep(0.05)
    raise AssertionError(f"processes of the killed job {job.pid} are still running")


def orphans(report: str) -> set[str]:
    """The orphan paths `store check` printed, staging and temp names generalised."""
    found = set()
    for line in report.splitlines():
        if line.startswith("orphan "):
            path = line.removeprefix("orphan ").split(":")[0]
            if path.startswith("staging/job-"):
                path = "staging/job-*"
            elif path.startswith(".metadata.json."):
                path = ".metadata.json.*.tmp"
            found.add(path)
    return found


@pytest.mark.parametrize("step", list(LEFT_BEHIND))
def test_a_job_killed_at_each_step_loses_nothing_and_the_next_job_succeeds(
    step: str, store_copy: ModelStore, small_csv: Path, tmp_path: Path
) -> None:
    committed = snapshot(store_copy.root)
    with running_server(["--store", str(store_copy.root)], tmp_path / "serve.log") as server:
        assert server.served_version() == "v2"

        assert killed_training(step, store_copy, small_csv) == -signal.SIGKILL

        after = snapshot(store_copy.root)
        assert {path: after.get(path) for path in committed} == committed
        assert server.served_version() == "v2"
        check = run_cli("store", "check", "--store", store_copy.root)
        assert check.returncode == 1
        assert orphans(check.stdout) == LEFT_BEHIND[step] | {"staging/job-*"}

        fix = run_cli("store", "check", "--fix", "--store", store_copy.root)
        assert fix.returncode == 0, fix.stderr
        assert snapshot(store_copy.root).keys() == committed.keys()
        assert run_cli("store", "check", "--store", store_copy.root).returncode == 0

        retrain = run_cli(
            "train", "--data", small_csv, "--store", store_copy.root, env={"MIN_AUC": "0"}
        )
        assert retrain.returncode == 0, retrain.stderr
        listed = json.loads(run_cli("models", "--json", "--store", store_copy.root).stdout)
        new = "v5" if LEFT_BEHIND[step] else "v4"  # a discarded number is never reused
        assert [m["version"] for m in listed["models"]] == ["v1", "v2", "v3", new]
        assert server.served_version() == "v2"
