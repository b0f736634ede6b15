"""The project's scripts/ (not a package), imported by path for their tests."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.chart.chart import REPO


def script(name: str) -> ModuleType:
    """scripts/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
