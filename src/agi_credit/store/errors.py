"""Errors of the model store; each builds its own message."""

from __future__ import annotations

from agi_credit._errors import AgiCreditError


class StoreError(AgiCreditError):
    """The model store refused an operation or could not be written."""


class InvalidVersionName(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"invalid version name {name!r}: versions are v1, v2, v3, …")
        self.name = name


class VersionNotFound(StoreError):
    def __init__(self, version: str, known: list[str]) -> None:
        known_text = ", ".join(known) if known else "none"
        super().__init__(f"unknown version {version}; the store has: {known_text}")
        self.version = version


class VersionRejected(StoreError):
    def __init__(self, version: str, reason: str | None) -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(f"version {version} was rejected{why} and cannot be promoted")
        self.version = version


class EmptyStore(StoreError):
    def __init__(self, root: object) -> None:
        super().__init__(f"the model store at {root} has no models yet; run `agi-credit train`")
