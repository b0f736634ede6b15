"""Configuration from the environment or `.env` (the origin's variable names)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything agi-credit reads from the environment; `.env` in the working directory too."""

    # Empty values count as unset: .env.example leaves optional paths and secrets empty.
    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", protected_namespaces=()
    )

    env: Literal["dev", "prod"] = "dev"
    """`dev` allows convenience defaults; `prod` allows no default secret."""

    data_path: Path = Path("data/application_train.csv")
    """The training CSV: the real application_train.csv or the synthetic stand-in."""

    model_store: Path = Path("artifacts")
    """Root of the model store (metadata.json, models/, reports/)."""

    model_output_path: Path | None = None
    """Where train.R writes when run by itself; the job always uses a private staging dir."""

    model_path: Path | None = None
    """Serve one .rds without a store."""

    feature_metadata_path: Path | None = None
    """Optional JSON with the model's `features` (the origin's model_metadata.json)."""

    train_script: Path = Path("training-job/train.R")
    """The data scientist's script (DESIGN.md contract)."""

    min_auc: float = Field(default=0.55, ge=0.0, le=1.0)
    """Promotion gate: a new version needs at least this holdout AUC."""

    auc_tolerance: float = Field(default=0.01, ge=0.0, le=1.0)
    """Promotion gate: how much worse than the current version's AUC is still promoted."""

    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    """Share of rows kept out of training for evaluation."""

    split_seed: int = 20260226
    """Seed of the stratified train/holdout split."""

    decision_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """prob_default at or above which `prediction` is 1; recorded per version."""

    model_name: str = "agi-credit"
    """The model's name in the inference paths (/v2/models/<name>/infer)."""

    max_batch_rows: int = Field(default=1_000_000, ge=1)
    """Largest batch one request may score; larger ones get a 400."""

    reload_interval: float = Field(default=0.25, gt=0.0)
    """How often the predictor checks metadata.json for changes (seconds)."""

    parity_rows: int = Field(default=1000, ge=10)
    """Rows on which a compiled scorer must match R before it is used."""

    parity_tolerance: float = Field(default=1e-9, ge=0.0)
    """Largest |compiled - R| difference in P(default) accepted on the parity sample."""

    scoring: Literal["auto", "r"] = "auto"
    """auto: a recipe + glm is scored by its compiled form once it matches R; r: all in R."""

    jwt_secret: SecretStr | None = None
    """HS256 signing secret of the auth sidecar: at least 32 bytes outside dev."""

    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    """HS256 signs with JWT_SECRET; RS256/ES256 with JWT_PRIVATE_KEY_PATH, and the public key
    is published at /.well-known/jwks.json for gateways that verify tokens themselves."""

    jwt_private_key_path: Path | None = None
    """PEM private key for RS256 (RSA ≥ 2048 bits) or ES256 (P-256)."""

    jwt_issuer: str = "agi-credit"
    jwt_audience: str = "agi-credit-api"
    token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=300)

    users_file: Path | None = None
    """YAML or JSON with argon2id password hashes (`agi-credit users add`)."""

    predictor_url: str = "http://127.0.0.1:8080"
    """Where the auth sidecar finds the predictor (localhost in the pod)."""

    login_attempts_per_client: int = Field(default=20, ge=1)
    """Login attempts one client address may make per window."""

    login_failures_per_user: int = Field(default=5, ge=1)
    """Failed logins one user name may have per window before it is locked for the rest."""

    login_window_seconds: float = Field(default=60.0, gt=0)
