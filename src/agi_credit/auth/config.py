"""The sidecar's configuration, checked before it starts: ENV=prod refuses weak settings."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from agi_credit.auth.errors import InsecureConfiguration
from agi_credit.auth.tokens import TokenIssuer
from agi_credit.auth.users import Users
from agi_credit.settings import Settings

log = logging.getLogger("agi_credit.auth")

MIN_SECRET_BYTES = 32
# Secrets that appear in examples, the origin's .env among them.
KNOWN_SECRETS = frozenset(
    {
        "agisecretkey",
        "secret",
        "changeme",
        "change-me",
        "jwt-secret",
        "your-secret-key",
        "supersecret",
    }
)


@dataclass(frozen=True)
class AuthConfig:
    issuer: TokenIssuer
    users: Users
    upstream: str
    model_name: str
    login_attempts_per_client: int
    login_failures_per_user: int
    login_window_seconds: float


def load_config(settings: Settings, *, upstream: str) -> AuthConfig:
    """Build the configuration; `InsecureConfiguration` says what to fix in prod."""
    prod = settings.env == "prod"
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    problems = []
    if not secret:
        if prod:
            problems.append(
                "JWT_SECRET is not set: set it to at least 32 random bytes "
                "(e.g. `openssl rand -hex 32`)"
            )
        else:
            secret = secrets.token_hex(32)
            log.warning(
                "JWT_SECRET is not set: using a random secret for this process "
                "(ENV=dev); tokens end with it"
            )
    elif prod and secret.strip().lower() in KNOWN_SECRETS:
        problems.append("JWT_SECRET is a well-known example value: generate a random one")
    elif prod and len(secret.encode()) < MIN_SECRET_BYTES:
        problems.append(
            f"JWT_SECRET has {len(secret.encode())} bytes; it needs at least {MIN_SECRET_BYTES}"
        )
    users = _users(settings.users_file, prod=prod, problems=problems)
    if problems:
        raise InsecureConfiguration("refusing to start with ENV=prod: " + "; ".join(problems))
    assert users is not None
    return AuthConfig(
        issuer=TokenIssuer(
            secret=secret.encode(),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.token_ttl_seconds,
            leeway_seconds=settings.jwt_leeway_seconds,
        ),
        users=users,
        upstream=upstream.rstrip("/"),
        model_name=settings.model_name,
        login_attempts_per_client=settings.login_attempts_per_client,
        login_failures_per_user=settings.login_failures_per_user,
        login_window_seconds=settings.login_window_seconds,
    )


def _users(path: Path | None, *, prod: bool, problems: list[str]) -> Users | None:
    if path is None:
        if prod:
            problems.append(
                "USERS_FILE is not set: create one with `agi-credit users add "
                "NAME --file users.yaml`"
            )
            return None
        log.warning("USERS_FILE is not set: the origin's admin/123456 login works (ENV=dev only)")
        return Users.dev_default()
    try:
        return Users.load(path)
    except InsecureConfiguration as exc:
        if prod:
            problems.append(str(exc))
            return None
        raise
