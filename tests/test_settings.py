"""Configuration: one settings class per component, from the environment or `.env`, with
the origin's names; `agi-credit config` shows what a process sees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agi_credit.settings import (
    AuthSettings,
    CommonSettings,
    PredictorSettings,
    TrainingSettings,
    settings_with,
)
from agi_credit.store import DEFAULT_DECISION_THRESHOLD
from tests.servers import REPO, run_cli


def test_the_example_env_file_is_valid_and_empty_values_are_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(REPO / ".env.example", tmp_path / ".env")
    monkeypatch.chdir(tmp_path)
    for name in ("MODEL_PATH", "USERS_FILE", "JWT_SECRET", "FEATURE_METADATA_PATH", "ENV"):
        monkeypatch.delenv(name, raising=False)
    training, predictor, auth = TrainingSettings(), PredictorSettings(), AuthSettings()
    assert training.env == predictor.env == auth.env == "dev"
    assert predictor.model_path is None and auth.users_file is None
    assert auth.jwt_secret is None and predictor.feature_metadata_path is None
    assert training.data_path == Path("data/application_train.csv")


def test_every_component_shares_the_common_settings() -> None:
    for component in (TrainingSettings, PredictorSettings, AuthSettings):
        assert issubclass(component, CommonSettings)
        assert {"env", "model_store", "log_level", "model_name"} <= set(component.model_fields)


def test_the_decision_threshold_default_is_the_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DECISION_THRESHOLD", raising=False)
    assert TrainingSettings(_env_file=None).decision_threshold == DEFAULT_DECISION_THRESHOLD  # type: ignore[call-arg]


def test_options_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PORT", "9090")
    monkeypatch.setenv("GRPC_PORT", "9091")
    settings = settings_with(PredictorSettings, http_port=7070, grpc_port=None)
    assert settings.http_port == 7070  # passed: wins
    assert settings.grpc_port == 9091  # not passed: the environment's


def test_the_actor_comes_from_agi_credit_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGI_CREDIT_ACTOR", "ci-pipeline")
    assert TrainingSettings().actor == "ci-pipeline"


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    assert "x" * 40 not in repr(AuthSettings())


def test_config_prints_each_components_settings_with_secrets_masked() -> None:
    secret = "a-very-secret-value-of-more-than-32-bytes"
    result = run_cli("config", env={"JWT_SECRET": secret, "HTTP_PORT": "9999", "ENV": "prod"})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert set(shown) == {"training", "predictor", "auth"}
    assert shown["predictor"]["http_port"] == 9999
    assert shown["auth"]["env"] == "prod"
    assert secret not in result.stdout and shown["auth"]["jwt_secret"] == "**********"


def test_config_of_one_component() -> None:
    result = run_cli("config", "--component", "training", env={"MIN_AUC": "0.6"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["min_auc"] == 0.6
    unknown = run_cli("config", "--component", "nope")
    assert unknown.returncode == 1 and "unknown component" in unknown.stderr
