"""Configuration: the environment or `.env`, with the origin's names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agi_credit.settings import Settings
from tests.conftest import REPO


def test_the_example_env_file_is_valid_and_empty_values_are_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(REPO / ".env.example", tmp_path / ".env")
    monkeypatch.chdir(tmp_path)
    for name in ("MODEL_PATH", "USERS_FILE", "JWT_SECRET", "FEATURE_METADATA_PATH", "ENV"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.env == "dev"
    assert settings.model_path is None and settings.users_file is None
    assert settings.jwt_secret is None and settings.feature_metadata_path is None
    assert settings.data_path == Path("data/application_train.csv")


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    assert "x" * 40 not in repr(Settings())
