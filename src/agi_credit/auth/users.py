"""Users: a YAML or JSON file of argon2id hashes and roles (a Kubernetes Secret in the
cluster), re-read when it changes, so that removing or disabling a user revokes its tokens
within seconds.

users:
  alice:
    password_hash: $argon2id$v=19$m=65536,t=3,p=4$...
    roles: [predict]          # predict (the default) or admin (predict and the details)
    disabled: false

A file without users (`users: {}`, no `users:`, an empty file) is valid and locks everyone
out: what an operator writes in an incident. A file that cannot be used keeps the users
loaded before, minus those it no longer lists or disables (see `Users.refresh`).

Without any file, one `admin` can come from a password (`Users.bootstrap`): what a Helm
install can generate, since a chart cannot hash. A USERS_FILE that appears replaces it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from filelock import FileLock

from agi_credit._files import atomic_write
from agi_credit.auth.errors import InsecureConfiguration, UnusableUsersFile

USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD_LENGTH = 8
DEV_USER, DEV_PASSWORD = "admin", "123456"  # the origin's, accepted only with ENV=dev
BOOTSTRAP_USER = "admin"  # the one user of BOOTSTRAP_ADMIN_PASSWORD, with the admin role

_hasher = PasswordHasher()  # argon2id, the library's recommended cost (64 MiB per check)

log = logging.getLogger("agi_credit.auth")

Role = Literal["predict", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
SCOPES_OF_ROLE: dict[str, frozenset[str]] = {
    "predict": frozenset({"predict"}),  # /predict, /model-info, the inference routes
    "admin": frozenset({"predict", "admin"}),  # and /model-info's details (errors, hashes)
}
NO_ONE_CAN_LOG_IN = "no one can log in, and every token is refused"
RELOAD_CHECK_SECONDS = 1.0
"""How often the users file is checked for changes (a stat), at most: on the requests that
need a user, so an idle sidecar does nothing."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@dataclass(frozen=True, slots=True)
class User:
    password_hash: str
    roles: frozenset[str] = frozenset({"predict"})
    disabled: bool = False

    @property
    def scopes(self) -> frozenset[str]:
        """What the user's tokens may do: nothing once disabled."""
        if self.disabled:
            return frozenset()
        return frozenset().union(*(SCOPES_OF_ROLE[role] for role in self.roles))


class Users:
    """User names and their entries, from a file that is re-read when it changes (its
    inode, size or modification time), checked at most every `check_seconds`. Password
    checks run on a pool of `hash_workers` threads: each takes argon2's 64 MiB, so a burst
    of logins waits its turn instead of taking memory without bound.

    The metrics thread reads `file_ok` and `enabled`, and checks the file too (so an idle
    sidecar's gauges are current): `_entries` is only ever replaced, never changed in
    place, and one check runs at a time."""

    def __init__(
        self,
        entries: dict[str, User],
        *,
        hash_workers: int = 2,
        hasher: PasswordHasher = _hasher,
        source: Path | None = None,
        prod: bool = False,
        check_seconds: float = RELOAD_CHECK_SECONDS,
    ) -> None:
        self._entries = entries
        self._hasher = hasher
        self._source, self._prod, self._check_seconds = source, prod, check_seconds
        self._signature: tuple[int, int, int, int] | None = None  # of the file as read
        self._file_ok = True
        self._bootstrap = False  # the bootstrap admin, until a file at `source` is read
        self._checking = threading.Lock()
        self._next_check = time.monotonic() + check_seconds
        # Unknown users are checked against this, so both answers take as long.
        self._dummy = hasher.hash(secrets.token_hex(16))
        self._pool = ThreadPoolExecutor(max_workers=hash_workers, thread_name_prefix="argon2")

    @property
    def file_ok(self) -> bool:
        """False while the last check could not use the file (the users before stay). True
        without a file (the bootstrap admin, the dev default): nothing is broken for the
        alert to call out, and `enabled` says who can log in."""
        return self._file_ok

    @property
    def enabled(self) -> int:
        """How many users may log in now."""
        return sum(not user.disabled for user in self._entries.values())

    def scopes(self, username: str) -> frozenset[str]:
        """What `username` may do now: empty for a removed or disabled user."""
        self.refresh()
        user = self._entries.get(username)
        return user.scopes if user else frozenset()

    def authenticate(self, username: str, password: str) -> bool:
        """The same work, and the same answer, for an unknown or disabled user and a wrong
        password. Blocks for the length of an argon2 check; `check` runs it on the pool."""
        user = self._entries.get(username)
        try:
            verified = self._hasher.verify(user.password_hash if user else self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return verified and user is not None and not user.disabled

    async def check(self, username: str, password: str) -> bool:
        """`authenticate` on the hashing pool, waiting for a free worker."""
        self.refresh()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.authenticate, username, password)

    def refresh(self) -> None:
        """Re-read the file if it changed, and at every check while the last one could not
        use it. A file without users locks everyone out. A file that cannot be used
        (unreadable, invalid, a weak hash in prod) is logged at ERROR at each check and
        `file_ok` is False until it can be used again; the users loaded before stay, except
        those a readable `users:` mapping no longer lists or marks `disabled: true`: an
        operator's removal is never undone by a mistake elsewhere in the file."""
        if self._source is None or time.monotonic() < self._next_check:
            return
        with self._checking:  # requests and the metrics thread both check
            if time.monotonic() >= self._next_check:
                self._check(self._source)

    def _check(self, source: Path) -> None:
        self._next_check = time.monotonic() + self._check_seconds
        signature = _signature(source)
        if signature == self._signature and self._file_ok:
            return
        self._signature = signature
        try:
            entries = read_users_file(source, prod=self._prod, hasher=self._hasher)
        except UnusableUsersFile as problem:
            self._keep_despite(problem)
            return
        removed = sorted(set(self._entries) - set(entries))
        self._entries, self._file_ok = entries, True
        if self._bootstrap:
            self._bootstrap = False
            log.warning(
                f"users: USERS_FILE={source} appeared and takes over: the bootstrap admin "
                "(BOOTSTRAP_ADMIN_PASSWORD) is dropped",
                extra={"event": "bootstrap_admin_dropped"},
            )
        message = f"users file reloaded: {len(entries)} users" + (
            f", removed: {', '.join(removed)}" if removed else ""
        )
        if self.enabled:
            log.info(message, extra={"event": "users_reloaded"})
        else:
            log.warning(message + f"; {NO_ONE_CAN_LOG_IN}", extra={"event": "users_reloaded"})

    def _keep_despite(self, problem: UnusableUsersFile) -> None:
        """Keep the users loaded before, less those `problem`'s file removes or disables."""
        self._file_ok = False
        still_enabled = problem.still_enabled
        revoked = [] if still_enabled is None else sorted(set(self._entries) - still_enabled)
        if revoked:
            self._entries = {n: u for n, u in self._entries.items() if n not in revoked}
        log.error(
            f"the users file cannot be used: {problem}; keeping the {len(self._entries)} "
            "users loaded before"
            + (f", less {', '.join(revoked)} (removed or disabled in it)" if revoked else ""),
            extra={"event": "users_reload_failed"},
        )

    def close(self) -> None:
        """Stop the pool's threads once the checks under way are done."""
        self._pool.shutdown(wait=False)

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        hash_workers: int = 2,
        prod: bool = False,
        check_seconds: float = RELOAD_CHECK_SECONDS,
    ) -> Users:
        """The users of a file, re-read when it changes; `UnusableUsersFile` when it is
        unreadable, a password is not an argon2id hash, or (prod) a hash is weaker than
        this sidecar's own parameters. A file without users starts with no one."""
        signature = _signature(path)  # before reading: a change while it is read is seen
        users = cls(
            read_users_file(path, prod=prod),
            hash_workers=hash_workers,
            source=path,
            prod=prod,
            check_seconds=check_seconds,
        )
        users._signature = signature
        if not users.enabled:
            log.warning(f"{path} has no enabled user: {NO_ONE_CAN_LOG_IN}")
        return users

    @classmethod
    def bootstrap(
        cls,
        password: str,
        *,
        source: Path | None = None,
        hash_workers: int = 2,
        prod: bool = False,
        check_seconds: float = RELOAD_CHECK_SECONDS,
    ) -> Users:
        """One `admin` with the admin role, from a password hashed here with this sidecar's
        own parameters (only the hash is kept). `source`, a USERS_FILE that does not exist
        yet, replaces it once it does; it never comes back, even if that file goes: a
        restart is the only way back to the bootstrap admin."""
        user = User(hash_password(password), roles=frozenset({"admin"}))
        users = cls(
            {BOOTSTRAP_USER: user},
            hash_workers=hash_workers,
            source=source,
            prod=prod,
            check_seconds=check_seconds,
        )
        users._bootstrap = source is not None
        return users

    @classmethod
    def dev_default(cls, *, hash_workers: int = 2) -> Users:
        """The origin's admin/123456 (ENV=dev only): the bootstrap admin with that password."""
        return cls.bootstrap(DEV_PASSWORD, hash_workers=hash_workers)


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when the file is rewritten or replaced (a Secret volume swaps a link)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def read_users_file(path: Path, *, prod: bool, hasher: PasswordHasher = _hasher) -> dict[str, User]:
    """The entries of a users file, none when it lists no users; `UnusableUsersFile` says
    what is wrong with a file that cannot be used (every invalid entry)."""
    listed = _users_mapping(path)
    entries: dict[str, User] = {}
    problems: list[str] = []
    for name, entry in listed.items():
        try:
            entries[str(name)] = _user(str(name), entry, path, prod, hasher)
        except InsecureConfiguration as exc:
            problems.append(str(exc))
    if problems:
        still_enabled = frozenset(
            str(name)
            for name, entry in listed.items()
            if not (isinstance(entry, dict) and entry.get("disabled") is True)
        )
        raise UnusableUsersFile("; ".join(problems), still_enabled=still_enabled)
    return entries


def _users_mapping(path: Path) -> dict[Any, Any]:
    """The file's `users:` mapping: empty when the file, or its `users:`, is."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        # Its position, not its text: the snippet YAML quotes may hold a password hash.
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UnusableUsersFile(f"{path} is not valid YAML{where}: {exc.problem}") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UnusableUsersFile(f"cannot read the users file {path}: {exc}") from exc
    if data is None:  # an emptied file: `: > users.yaml` in an incident
        return {}
    if not isinstance(data, dict):
        raise UnusableUsersFile(f"{path} is not a users file (expected a `users:` mapping)")
    listed = data.get("users")
    if listed is None:
        return {}
    if not isinstance(listed, dict):
        raise UnusableUsersFile(f"{path} is not a users file (`users:` is not a mapping)")
    return listed


def _user(name: str, entry: Any, path: Path, prod: bool, hasher: PasswordHasher) -> User:
    stored = entry.get("password_hash") if isinstance(entry, dict) else None
    if not isinstance(stored, str) or not stored.startswith("$argon2id$"):
        raise InsecureConfiguration(
            f"user {name!r} in {path} has no argon2id password_hash; add users with "
            "`agi-credit users add NAME`"
        )
    roles = entry.get("roles", ["predict"])
    if not isinstance(roles, list) or not roles or not all(role in ROLES for role in roles):
        raise InsecureConfiguration(
            f"user {name!r} in {path}: roles must be a list of {', '.join(ROLES)}"
        )
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise InsecureConfiguration(f"user {name!r} in {path}: disabled must be true or false")
    try:
        weakness = _weaker_than(stored, hasher)
    except InvalidHashError as exc:
        raise InsecureConfiguration(f"user {name!r} in {path}: an invalid argon2id hash") from exc
    if weakness:
        message = (
            f"user {name!r} in {path} has a password hash weaker than this sidecar's "
            f"({weakness}): set the password again with `agi-credit users add {name}`"
        )
        if prod:
            raise InsecureConfiguration(message)
        log.warning(message + " (accepted with ENV=dev)")
    return User(stored, roles=frozenset(roles), disabled=disabled)


def _weaker_than(stored: str, hasher: PasswordHasher) -> str:
    """What makes `stored` cheaper to brute-force than `hasher`'s hashes ("" if nothing);
    `InvalidHashError` when it is no argon2 hash."""
    used = extract_parameters(stored)
    weak = [
        f"{label} {have} < {need}"
        for label, have, need in (
            ("memory_cost", used.memory_cost, hasher.memory_cost),
            ("time_cost", used.time_cost, hasher.time_cost),
        )
        if have < need
    ]
    return ", ".join(weak)


def add_user(
    path: Path, username: str, password: str, roles: Iterable[Role] = ("predict",)
) -> None:
    """Add or replace `username` in the users file (created 0600), enabled, with `roles`."""
    if not USERNAME.fullmatch(username):
        raise ValueError("user names are 1-64 letters, digits, '.', '_', '@' or '-'")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    chosen = sorted(set(roles))
    if not chosen or not set(chosen) <= set(ROLES):
        raise ValueError(f"roles are {', '.join(ROLES)}")
    entry = {"password_hash": hash_password(password), "roles": chosen}  # slow: before the lock

    def put(users: dict[str, Any]) -> None:
        users[username] = entry

    _update_users_file(path, put)


def set_disabled(path: Path, username: str, disabled: bool = True) -> None:
    """Disable (or enable again) `username`: a running sidecar refuses its tokens and its
    logins within seconds, and its hash and roles stay for `enable`."""

    def change(users: dict[str, Any]) -> None:
        entry = users.get(username)
        if not isinstance(entry, dict):
            raise ValueError(f"no user {username!r} in {path}")
        entry["disabled"] = disabled

    _update_users_file(path, change)


def _update_users_file(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the file's `users` mapping. Concurrent updates of the same file all
    count: each holds `<file>.lock` while it reads and rewrites the file, and the file is
    replaced atomically, so readers (a running sidecar) never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(path.name + ".lock"), mode=0o600):
        data = _read_users_file(path)
        change(data["users"])
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
