"""The GitHub workflows are valid against GitHub's workflow schema, checked offline; and the
CI workflow keeps what the kind e2e run needs: Helm 3 pinned, the logs of a failed or
cancelled run, a time budget below the timeouts, the Actions runtime for the build cache."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.servers import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
CHECK = Path(sys.executable).parent / "check-jsonschema"


def check(workflow: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK, "--builtin-schema", "vendor.github-workflows", workflow],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_a_workflow_matches_githubs_schema(workflow: Path) -> None:
    result = check(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_workflow_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  lint:\n    runs-on: ubuntu-24.04\n    step: []\n")
    assert check(broken).returncode != 0


# --- what the CI workflow must keep (parsed, not grepped) ---------------------------------

CI = REPO / ".github" / "workflows" / "ci.yml"
KIND_E2E = REPO / "scripts" / "kind_e2e.py"


def ci_jobs() -> dict[str, Any]:
    jobs = yaml.safe_load(CI.read_text(encoding="utf-8"))["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(f"{action}@")


def kind_e2e_step(job: dict[str, Any]) -> int:
    (index,) = [i for i, s in enumerate(job["steps"]) if s.get("run") == "make kind-e2e"]
    return index


def condition(step: dict[str, Any]) -> str:
    return " ".join(str(step.get("if", "")).split())


def kind_e2e_module() -> ModuleType:
    """scripts/kind_e2e.py, imported (its constants as the run sees them)."""
    spec = importlib.util.spec_from_file_location("kind_e2e", KIND_E2E)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["kind_e2e"] = module
    spec.loader.exec_module(module)
    return module


def test_helm_is_pinned_to_a_helm_3_release_wherever_it_is_set_up() -> None:
    """Unpinned, azure/setup-helm installs the newest Helm, 4 since November 2025."""
    pins = [s for job in ci_jobs().values() for s in job["steps"] if uses(s, "azure/setup-helm")]
    assert len(pins) >= 2, pins  # lint and e2e-kind
    versions = {str(step.get("with", {}).get("version")) for step in pins}
    assert len(versions) == 1, versions  # one Helm, the one tests/chart/helm_release.py models
    (version,) = versions
    assert re.fullmatch(r"v3\.\d+\.\d+", version), version


def test_the_kind_logs_are_kept_when_the_run_fails_or_is_cancelled() -> None:
    job = ci_jobs()["e2e-kind"]
    run = kind_e2e_step(job)
    after = job["steps"][run + 1 :]
    assert after
    for step in after:
        assert condition(step) == "failure() || cancelled()", step
    export = next(s for s in after if "kind export logs" in str(s.get("run", "")))
    (upload,) = [s for s in after if uses(s, "actions/upload-artifact")]
    paths = str(upload["with"]["path"]).splitlines()
    exported = re.search(r'kind export logs "([^"]+)"', export["run"])
    assert exported and exported[1] in paths
    # the script's diagnostics (events, pod and controller logs, helm status) go up too
    assert job["steps"][run]["env"]["KIND_E2E_LOGS"] in paths


def test_the_kind_e2e_budget_ends_before_github_cancels_the_run() -> None:
    """The script fails with "budget exhausted during <step>" and writes its diagnostics
    before the step's timeout-minutes, and the job's leaves time for the log steps."""
    budget = kind_e2e_module().BUDGET_SECONDS
    job = ci_jobs()["e2e-kind"]
    step_minutes = job["steps"][kind_e2e_step(job)]["timeout-minutes"]
    job_minutes = job["timeout-minutes"]
    assert budget < step_minutes * 60 < job_minutes * 60
    assert step_minutes * 60 - budget >= 5 * 60  # make setup before, diagnostics after
    assert job_minutes - step_minutes >= 5  # setup steps before, kind logs and upload after


def test_every_build_with_the_gha_cache_has_the_actions_runtime_and_buildx() -> None:
    """`run:` steps get no ACTIONS_RUNTIME_TOKEN: without ghaction-github-runtime before it,
    buildx drops the gha cache (and scripts/build-images.sh stops)."""
    cached = 0
    for name, job in ci_jobs().items():
        for index, step in enumerate(job["steps"]):
            if str(step.get("env", {}).get("GHA_CACHE", "")) not in ("", "0"):
                cached += 1
                before = job["steps"][:index]
                assert any(uses(s, "crazy-max/ghaction-github-runtime") for s in before), name
                assert any(uses(s, "docker/setup-buildx-action") for s in before), name
    assert cached >= 2  # images and e2e-kind
