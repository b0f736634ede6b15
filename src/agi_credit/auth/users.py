"""Users: a YAML or JSON file of argon2id hashes (a Kubernetes Secret in the cluster).

users:
  alice:
    password_hash: $argon2id$v=19$m=65536,t=3,p=4$...
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from pathlib import Path

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from agi_credit.auth.errors import InsecureConfiguration

USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD_LENGTH = 8
DEV_USER, DEV_PASSWORD = "admin", "123456"  # the origin's, accepted only with ENV=dev

_hasher = PasswordHasher()  # argon2id, the library's recommended cost


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class Users:
    def __init__(self, hashes: dict[str, str]) -> None:
        self.hashes = hashes
        # Unknown users are checked against this, so both answers take as long.
        self._dummy = _hasher.hash(secrets.token_hex(16))

    def authenticate(self, username: str, password: str) -> bool:
        """The same work, and the same answer, for an unknown user and a wrong password."""
        stored = self.hashes.get(username)
        try:
            return _hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    @classmethod
    def load(cls, path: Path) -> Users:
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
        return cls(hashes)

    @classmethod
    def dev_default(cls) -> Users:
        return cls({DEV_USER: hash_password(DEV_PASSWORD)})


def add_user(path: Path, username: str, password: str) -> None:
    """Add or replace `username` in the users file (created 0600), written atomically."""
    if not USERNAME.fullmatch(username):
        raise ValueError("user names are 1-64 letters, digits, '.', '_', '@' or '-'")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    data: dict[str, object] = {"users": {}}
    if path.exists():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(loaded, dict) and isinstance(loaded.get("users"), dict):
            data = loaded
    users = data["users"]
    assert isinstance(users, dict)
    users[username] = {"password_hash": hash_password(password)}
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        json.dumps(data, indent=2) + "\n"
        if path.suffix == ".json"
        else yaml.safe_dump(data, sort_keys=True)
    )
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
