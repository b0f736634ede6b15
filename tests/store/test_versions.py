"""Version names are validated before any path is built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agi_credit.store import InvalidVersionName, ModelStore, version_name, version_number


@pytest.mark.parametrize(("name", "number"), [("v1", 1), ("v9", 9), ("v10", 10), ("v123", 123)])
def test_valid_names_give_their_number(name: str, number: int) -> None:
    assert version_number(name) == number
    assert version_name(number) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "v",
        "v0",
        "v01",
        "V1",
        "1",
        "v1 ",
        " v1",
        "v1\n",
        "v-1",
        "v1.0",
        "../v1",
        "v1/../../etc",
        "latest",
    ],
)
def test_anything_else_is_refused(name: str) -> None:
    with pytest.raises(InvalidVersionName, match="invalid version name"):
        version_number(name)


def test_paths_are_never_built_from_a_bad_name(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(InvalidVersionName):
        store.artifact_path("../../etc/passwd")
    with pytest.raises(InvalidVersionName):
        store.report_dir("v1/../..")
    assert store.artifact_path("v3") == tmp_path / "models" / "model_v3.rds"
