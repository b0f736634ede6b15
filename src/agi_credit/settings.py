"""Configuration: one settings class per deployable component, read from the environment or
`.env` in the working directory, with the origin's variable names.

    CommonSettings          ENV, MODEL_STORE, MODEL_NAME, LOG_LEVEL, AGI_CREDIT_ACTOR
    ├── TrainingSettings    the training job (`agi-credit train`)
    ├── PredictorSettings   the KServe predictor (`agi-credit serve`)
    └── AuthSettings        the JWT sidecar (`agi-credit auth`)

Every default is declared here, once; the CLI's options override these values and fall back
to them. `agi-credit config` prints what a process sees, secrets masked.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agi_credit.store import DEFAULT_DECISION_THRESHOLD

__all__ = [
    "COMPONENTS",
    "AuthSettings",
    "CommonSettings",
    "PredictorSettings",
    "TrainingSettings",
]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Largest request body, in the sidecar and, behind it, in the predictor (413 beyond)."""


class CommonSettings(BaseSettings):
    """What every component reads."""

    # Empty values count as unset: .env.example leaves optional paths and secrets empty.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        protected_namespaces=(),
        populate_by_name=True,
    )

    env: Literal["dev", "prod"] = "dev"
    """`dev` allows convenience defaults; `prod` allows no default secret."""

    model_store: Path = Path("artifacts")
    """Root of the model store (metadata.json, models/, reports/)."""

    model_name: str = "agi-credit"
    """The model's name in the inference paths (/v2/models/<name>/infer)."""

    log_level: LogLevel = "INFO"
    """Level of the JSON logs of the servers and of the CLI's messages."""

    actor: str | None = Field(default=None, validation_alias=AliasChoices("agi_credit_actor"))
    """Who acts, for the store's history (AGI_CREDIT_ACTOR); `user@host` when unset."""


class TrainingSettings(CommonSettings):
    """The training job."""

    data_path: Path = Path("data/application_train.csv")
    """The training CSV: the real application_train.csv or the synthetic stand-in."""

    model_output_path: Path | None = None
    """Where train.R writes when run by itself; the job always uses a private staging dir."""

    train_script: Path = Path("training-job/train.R")
    """The data scientist's script (see docs/architecture.md, "train.R")."""

    min_auc: float = Field(default=0.55, ge=0.0, le=1.0)
    """Promotion gate: a new version needs at least this holdout AUC."""

    auc_tolerance: float = Field(default=0.01, ge=0.0, le=1.0)
    """Promotion gate: how much worse than the current version's AUC is still promoted."""

    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    """Share of rows kept out of training for evaluation."""

    split_seed: int = 20260226
    """Seed of the stratified train/holdout split."""

    decision_threshold: float = Field(default=DEFAULT_DECISION_THRESHOLD, gt=0.0, lt=1.0)
    """prob_default at or above which `prediction` is 1; recorded per version."""

    train_timeout_seconds: float = Field(default=3600.0, gt=0.0)
    """train.R is stopped when it runs longer than this."""


class PredictorSettings(CommonSettings):
    """The KServe predictor."""

    model_path: Path | None = None
    """Serve one .rds without a store."""

    feature_metadata_path: Path | None = None
    """Optional JSON with the model's `features` (the origin's model_metadata.json)."""

    kserve_storage_path: Path = Path("/mnt/models")
    """Where KServe mounts a pvc:// STORAGE_URI; served when MODEL_STORE has no store."""

    predictor_host: str = "127.0.0.1"
    """Address the predictor listens on, HTTP and gRPC: loopback behind the sidecar in a
    pod; the container network in compose (still publishing no port)."""

    http_port: int = Field(default=8080, ge=1, le=65535)
    grpc_port: int = Field(default=8081, ge=1, le=65535)

    max_batch_rows: int = Field(default=1_000_000, ge=1)
    """Largest batch one request may score; larger ones get a 400."""

    max_request_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BYTES, ge=1024)
    """Largest REST request body (413 beyond, before it is parsed)."""

    reload_interval: float = Field(default=0.25, gt=0.0)
    """How often the predictor checks metadata.json for changes (seconds)."""

    parity_rows: int = Field(default=1000, ge=10)
    """Rows on which a compiled scorer must match R before it is used."""

    parity_tolerance: float = Field(default=1e-9, ge=0.0)
    """Largest |compiled - R| difference in P(default) accepted on the parity sample."""

    scoring: Literal["auto", "r"] = "auto"
    """auto: a recipe + glm is scored by its compiled form once it matches R; r: all in R."""

    def served_store(self) -> Path:
        """MODEL_STORE, or KServe's mount when MODEL_STORE holds no store and the mount does."""
        if (self.model_store / "metadata.json").exists():
            return self.model_store
        if (self.kserve_storage_path / "metadata.json").exists():
            return self.kserve_storage_path
        return self.model_store


class AuthSettings(CommonSettings):
    """The JWT auth sidecar."""

    auth_host: str = "127.0.0.1"
    """Address the sidecar listens on; 0.0.0.0 in a pod, where it is the only door."""

    auth_port: int = Field(default=8000, ge=1, le=65535)

    predictor_url: str = "http://127.0.0.1:8080"
    """Where the sidecar finds the predictor (localhost in the pod)."""

    auth_grpc_port: int = Field(default=8001, ge=0, le=65535)
    """The sidecar's gRPC port (Open Inference Protocol v2 behind the JWT); 0: none."""

    predictor_grpc: str = "127.0.0.1:8081"
    """Where the sidecar finds the predictor's gRPC port (host:port)."""

    auth_metrics_port: int = Field(default=9091, ge=0, le=65535)
    """The sidecar's Prometheus metrics (the users file's state), on 127.0.0.1 only: the
    public port never serves them. 0: none."""

    jwt_secret: SecretStr | None = None
    """HS256 signing secret: at least 32 bytes outside dev."""

    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    """HS256 signs with JWT_SECRET; RS256/ES256 with JWT_PRIVATE_KEY_PATH, and the public key
    is published at /.well-known/jwks.json for gateways that verify tokens themselves."""

    jwt_private_key_path: Path | None = None
    """PEM private key for RS256 (RSA ≥ 2048 bits) or ES256 (P-256)."""

    jwt_issuer: str = "agi-credit"
    jwt_audience: str = "agi-credit-api"
    token_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=300)

    users_file: Path | None = None
    """YAML or JSON with argon2id password hashes (`agi-credit users add`). When it exists,
    even empty, it alone says who may log in."""

    bootstrap_admin_password: SecretStr | None = None
    """One `admin` (admin role) while no users file exists: USERS_FILE unset or missing,
    until it appears. Hashed at start, as `users add` would: a Helm install generates it
    into a Secret, since a chart cannot hash. At least 16 characters in prod."""

    login_attempts_per_client: int = Field(default=20, ge=1)
    """Login attempts one client address may make per window."""

    login_failures_per_user: int = Field(default=5, ge=1)
    """Failed logins one user name may have per window before it is locked for the rest."""

    login_window_seconds: float = Field(default=60.0, gt=0)

    rate_limit_max_keys: int = Field(default=100_000, ge=1)
    """Client addresses and user names the login limiter remembers at most."""

    password_hash_workers: int = Field(default=2, ge=1, le=64)
    """Password checks that run at once; each argon2 check takes 64 MiB."""

    max_request_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BYTES, ge=1024)
    """Largest request body /predict and the pass-through accept (413 beyond)."""

    max_concurrent_predicts: int = Field(default=2, ge=1)
    """/predict requests and gRPC calls the sidecar serves at once (one pool of slots), from
    reading the body to sending the answer: each takes up to 4 x MAX_REQUEST_BYTES. Others
    wait their turn, their bodies unread, so that the sidecar's memory has a bound a
    container limit can hold (docs/reliability.md)."""

    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    """CIDRs of the proxies in front (an ingress controller), comma-separated: from them,
    the client address is the last X-Forwarded-For hop that is not a trusted proxy. Empty,
    the default, ignores X-Forwarded-For: a client could write anything there."""

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


COMPONENTS: dict[str, type[CommonSettings]] = {
    "training": TrainingSettings,
    "predictor": PredictorSettings,
    "auth": AuthSettings,
}


S = TypeVar("S", bound=CommonSettings)


def settings_with(cls: type[S], **overrides: Any) -> S:
    """`cls()` with the options a user passed (None means "not passed") taking precedence."""
    return cls(**{name: value for name, value in overrides.items() if value is not None})
