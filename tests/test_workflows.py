"""The GitHub workflows are valid against GitHub's workflow schema, checked offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
