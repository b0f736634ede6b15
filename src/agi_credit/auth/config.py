"""The sidecar's configuration, checked before it starts: ENV=prod refuses weak settings."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from agi_credit.auth.errors import InsecureConfiguration
from agi_credit.auth.tokens import (
    PrivateKey,
    TokenIssuer,
    generate_private_key,
    key_id,
    load_private_key,
)
from agi_credit.auth.users import DEV_PASSWORD, Users
from agi_credit.settings import AuthSettings

log = logging.getLogger("agi_credit.auth")

MIN_SECRET_BYTES = 32
MIN_BOOTSTRAP_PASSWORD_LENGTH = 16
"""In prod: a password that a Helm install generates is far longer; a typed one is not."""
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
    rate_limit_max_keys: int
    """Client addresses and user names each login limiter remembers at most."""
    max_request_bytes: int
    """Largest body /predict and the pass-through accept."""


def load_config(settings: AuthSettings) -> AuthConfig:
    """Build the configuration; `InsecureConfiguration` says what to fix in prod."""
    prod = settings.env == "prod"
    problems: list[str] = []
    if settings.jwt_algorithm == "HS256":
        signing_key: bytes | PrivateKey | None = _secret(settings, prod=prod, problems=problems)
    else:
        signing_key = _private_key(settings, prod=prod, problems=problems)
    users = _users(settings, prod=prod, problems=problems)
    if problems:
        raise InsecureConfiguration("refusing to start with ENV=prod: " + "; ".join(problems))
    assert users is not None and signing_key is not None
    return AuthConfig(
        issuer=TokenIssuer(
            signing_key=signing_key,
            algorithm=settings.jwt_algorithm,
            key_id=None if isinstance(signing_key, bytes) else key_id(signing_key),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.token_ttl_seconds,
            leeway_seconds=settings.jwt_leeway_seconds,
        ),
        users=users,
        upstream=settings.predictor_url.rstrip("/"),
        model_name=settings.model_name,
        login_attempts_per_client=settings.login_attempts_per_client,
        login_failures_per_user=settings.login_failures_per_user,
        login_window_seconds=settings.login_window_seconds,
        rate_limit_max_keys=settings.rate_limit_max_keys,
        max_request_bytes=settings.max_request_bytes,
    )


def _secret(settings: AuthSettings, *, prod: bool, problems: list[str]) -> bytes | None:
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    if not secret:
        if not prod:
            log.warning(
                "JWT_SECRET is not set: using a random secret for this process "
                "(ENV=dev); tokens end with it"
            )
            return secrets.token_hex(32).encode()
        problems.append(
            "JWT_SECRET is not set: set it to at least 32 random bytes "
            "(e.g. `openssl rand -hex 32`)"
        )
    elif prod and secret.strip().lower() in KNOWN_SECRETS:
        problems.append("JWT_SECRET is a well-known example value: generate a random one")
    elif prod and len(secret.encode()) < MIN_SECRET_BYTES:
        problems.append(
            f"JWT_SECRET has {len(secret.encode())} bytes; it needs at least {MIN_SECRET_BYTES}"
        )
    return secret.encode()


def _private_key(settings: AuthSettings, *, prod: bool, problems: list[str]) -> PrivateKey | None:
    algorithm = settings.jwt_algorithm
    if settings.jwt_private_key_path is not None:
        return load_private_key(settings.jwt_private_key_path, algorithm)
    if prod:
        problems.append(
            f"JWT_ALGORITHM={algorithm} needs JWT_PRIVATE_KEY_PATH (a PEM private "
            "key, e.g. from `openssl genpkey`)"
        )
        return None
    log.warning(
        f"JWT_PRIVATE_KEY_PATH is not set: using a new {algorithm} key for this "
        "process (ENV=dev); tokens end with it"
    )
    return generate_private_key(algorithm)


def _users(settings: AuthSettings, *, prod: bool, problems: list[str]) -> Users | None:
    """A users file that exists decides alone (even empty: an incident's lock-out); without
    one, BOOTSTRAP_ADMIN_PASSWORD's admin, else (dev) the origin's admin/123456."""
    path, password = settings.users_file, settings.bootstrap_admin_password
    if prod and password is not None:
        # Checked even when a file exists: a start that finds it missing would use it.
        problems.extend(_bootstrap_problems(password.get_secret_value()))
    if path is not None and _exists(path):
        return _users_file(path, settings, prod=prod, problems=problems)
    if password is not None:
        return None if problems else _bootstrap(password, path, settings, prod=prod)
    if path is None and not prod:
        log.warning(
            "users: the origin's admin/123456 login works (ENV=dev only): "
            "no USERS_FILE, no BOOTSTRAP_ADMIN_PASSWORD"
        )
        return Users.dev_default(hash_workers=settings.password_hash_workers)
    if not prod:  # a USERS_FILE named but missing is a mistake in dev too
        raise InsecureConfiguration(_no_users(path))
    problems.append(_no_users(path))
    return None


def _exists(path: Path) -> bool:
    """Whether `path` is there; one that cannot be looked at (EACCES) counts as there, so
    that the bootstrap admin never stands in for a file that exists."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return True


def _users_file(
    path: Path, settings: AuthSettings, *, prod: bool, problems: list[str]
) -> Users | None:
    try:
        users = Users.load(path, hash_workers=settings.password_hash_workers, prod=prod)
    except InsecureConfiguration as exc:
        if prod:
            problems.append(str(exc))
            return None
        raise
    ignored = settings.bootstrap_admin_password is not None
    log.info(
        f"users: from USERS_FILE={path}"
        + (" (BOOTSTRAP_ADMIN_PASSWORD is ignored: the file exists)" if ignored else "")
    )
    return users


def _bootstrap(
    password: SecretStr, path: Path | None, settings: AuthSettings, *, prod: bool
) -> Users:
    """The bootstrap admin; a USERS_FILE named but missing takes over when it appears."""
    why = "USERS_FILE is not set" if path is None else f"USERS_FILE={path} does not exist yet"
    log.info(
        f"users: the bootstrap admin from BOOTSTRAP_ADMIN_PASSWORD (no users file exists: {why})"
    )
    return Users.bootstrap(
        password.get_secret_value(),
        source=path,
        hash_workers=settings.password_hash_workers,
        prod=prod,
    )


def _bootstrap_problems(password: str) -> list[str]:
    """What makes a bootstrap password unfit for prod; never the password itself."""
    if password == DEV_PASSWORD:
        return ["BOOTSTRAP_ADMIN_PASSWORD is the origin's well-known dev password: generate one"]
    if len(password) < MIN_BOOTSTRAP_PASSWORD_LENGTH:
        return [
            f"BOOTSTRAP_ADMIN_PASSWORD is shorter than {MIN_BOOTSTRAP_PASSWORD_LENGTH} "
            "characters: generate one (e.g. `openssl rand -base64 24`)"
        ]
    return []


def _no_users(path: Path | None) -> str:
    """Both ways to give the sidecar users, for a start that has neither."""
    missing = "USERS_FILE is not set" if path is None else f"USERS_FILE={path} does not exist"
    return (
        f"{missing} and BOOTSTRAP_ADMIN_PASSWORD is not set: create a users file with "
        "`agi-credit users add NAME --file users.yaml` and point USERS_FILE at it, or set "
        f"BOOTSTRAP_ADMIN_PASSWORD ({MIN_BOOTSTRAP_PASSWORD_LENGTH}+ characters) for one admin"
    )
