"""Users: a YAML or JSON file of argon2id hashes (a Kubernetes Secret in the cluster).

users:
  alice:
    password_hash: $argon2id$v=19$m=65536,t=3,p=4$...
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from filelock import FileLock

from agi_credit._files import atomic_write
from agi_credit.auth.errors import InsecureConfiguration

USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD_LENGTH = 8
DEV_USER, DEV_PASSWORD = "admin", "123456"  # the origin's, accepted only with ENV=dev

_hasher = PasswordHasher()  # argon2id, the library's recommended cost (64 MiB per check)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class Users:
    """User names and their password hashes. Password checks run on a pool of `hash_workers`
    threads: each takes argon2's 64 MiB, so a burst of logins waits its turn instead of
    taking memory without bound."""

    def __init__(
        self, hashes: dict[str, str], *, hash_workers: int = 2, hasher: PasswordHasher = _hasher
    ) -> None:
        self.hashes = hashes
        self._hasher = hasher
        # Unknown users are checked against this, so both answers take as long.
        self._dummy = hasher.hash(secrets.token_hex(16))
        self._pool = ThreadPoolExecutor(max_workers=hash_workers, thread_name_prefix="argon2")

    def authenticate(self, username: str, password: str) -> bool:
        """The same work, and the same answer, for an unknown user and a wrong password.
        Blocks for the length of an argon2 check; `check` runs it on the pool."""
        stored = self.hashes.get(username)
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def check(self, username: str, password: str) -> bool:
        """`authenticate` on the hashing pool, waiting for a free worker."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.authenticate, username, password)

    def close(self) -> None:
        """Stop the pool's threads once the checks under way are done."""
        self._pool.shutdown(wait=False)

    @classmethod
    def load(cls, path: Path, *, hash_workers: int = 2) -> Users:
        """Read a users file; `InsecureConfiguration` when it is unreadable or a password
        is not an argon2id hash."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InsecureConfiguration(f"cannot read the users file {path}: {exc}") from exc
        entries = data.get("users") if isinstance(data, dict) else None
        if not isinstance(entries, dict) or not entries:
            raise InsecureConfiguration(f"{path} has no users (expected a `users:` mapping)")
        hashes = {}
        for name, entry in entries.items():
            stored = entry.get("password_hash") if isinstance(entry, dict) else None
            if not isinstance(stored, str) or not stored.startswith("$argon2id$"):
                raise InsecureConfiguration(
                    f"user {name!r} in {path} has no argon2id password_hash; add users with "
                    "`agi-credit users add NAME`"
                )
            hashes[str(name)] = stored
        return cls(hashes, hash_workers=hash_workers)

    @classmethod
    def dev_default(cls, *, hash_workers: int = 2) -> Users:
        return cls({DEV_USER: hash_password(DEV_PASSWORD)}, hash_workers=hash_workers)


def add_user(path: Path, username: str, password: str) -> None:
    """Add or replace `username` in the users file (created 0600). Concurrent calls on the
    same file all count: each holds `<file>.lock` while it reads and rewrites the file, and
    the file is replaced atomically, so readers never see half of it."""
    if not USERNAME.fullmatch(username):
        raise ValueError("user names are 1-64 letters, digits, '.', '_', '@' or '-'")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = hash_password(password)  # slow: before taking the lock
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(path.name + ".lock"), mode=0o600):
        data = _read_users_file(path)
        data["users"][username] = {"password_hash": password_hash}
        text = (
            json.dumps(data, indent=2) + "\n"
            if path.suffix == ".json"
            else yaml.safe_dump(data, sort_keys=True)
        )
        atomic_write(path, text.encode("utf-8"), 0o600)


def _read_users_file(path: Path) -> dict[str, Any]:
    """The users file's content, `{"users": {}}` when there is none yet."""
    if not path.exists():
        return {"users": {}}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not a users file: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} is not a users file (expected a `users:` mapping)")
    if loaded.get("users") is None:
        loaded["users"] = {}
    if not isinstance(loaded["users"], dict):
        raise ValueError(f"{path} is not a users file (`users:` is not a mapping)")
    return loaded
