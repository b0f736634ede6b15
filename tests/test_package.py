"""The package's public surface and the walls between its rooms."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import REPO, clean_env, run_cli

PACKAGE = REPO / "src" / "agi_credit"
ROOMS = ["data", "store", "rruntime", "training", "predictor", "auth"]


@pytest.mark.parametrize("room", ROOMS)
def test_every_exported_name_exists(room: str) -> None:
    module = importlib.import_module(f"agi_credit.{room}")
    assert module.__all__, room
    for name in module.__all__:
        assert hasattr(module, name), f"agi_credit.{room}.{name}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_rpy2_is_imported_in_one_module_only() -> None:
    importers = sorted(
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if any(n.split(".")[0] == "rpy2" for n in _imports(p))
    )
    assert importers == ["rruntime/_r.py"]


@pytest.mark.parametrize("room", ROOMS)
def test_rooms_use_each_other_only_through_their_public_package(room: str) -> None:
    for path in (PACKAGE / room).rglob("*.py"):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "agi_credit" and len(parts) > 2 and parts[1] in ROOMS:
                assert parts[1] == room, f"{path.relative_to(PACKAGE)} reaches into {name}"


def test_invalid_settings_are_a_clear_error() -> None:
    result = run_cli("check-data", env={"MIN_AUC": "2"})
    assert result.returncode == 1
    assert "invalid configuration" in result.stderr and "min_auc" in result.stderr


@pytest.mark.parametrize(
    "statement",
    [
        *(f"import agi_credit.{room}" for room in ROOMS),
        "from agi_credit.training import decide",
        "import agi_credit.rruntime.child",
        "import agi_credit.cli",
    ],
)
def test_importing_does_not_start_r(statement: str) -> None:
    """R starts on first use, not on import, and leaves TZ and LD_LIBRARY_PATH alone."""
    probe = f"""
import os, sys
before = (os.environ.get("TZ"), os.environ.get("LD_LIBRARY_PATH"))
{statement}
assert "rpy2" not in sys.modules, "rpy2 was imported"
assert "agi_credit.rruntime._r" not in sys.modules, "embedded R was started"
assert (os.environ.get("TZ"), os.environ.get("LD_LIBRARY_PATH")) == before
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_r_starts_on_first_use() -> None:
    probe = """
import sys
from agi_credit import rruntime
assert not rruntime.is_started()
rruntime.RModel  # first use
assert rruntime.is_started() and "rpy2" in sys.modules
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr


# What each room may import, lowest first: a room never imports one above it, so no cycle.
LAYERS = {
    "data": set(),
    "store": set(),
    "rruntime": set(),
    "settings": {"store"},
    "training": {"data", "store", "rruntime", "settings"},
    "predictor": {"store", "rruntime", "settings", "model_metadata"},
    "auth": {"store", "settings", "model_metadata"},
}


@pytest.mark.parametrize("room", LAYERS)
def test_rooms_import_only_the_rooms_below_them(room: str) -> None:
    paths = [PACKAGE / f"{room}.py"] if room == "settings" else list((PACKAGE / room).rglob("*.py"))
    used = {
        name.split(".")[1]
        for path in paths
        for name in _imports(path)
        if name.startswith("agi_credit.") and not name.split(".")[1].startswith("_")
    }
    assert used - {room} <= LAYERS[room], f"{room} imports {sorted(used - {room} - LAYERS[room])}"
