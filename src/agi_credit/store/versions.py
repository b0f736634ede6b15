"""Version names: v1, v2, … — validated before any path is built from them."""

from __future__ import annotations

import re

from agi_credit.store.errors import InvalidVersionName

VERSION_PATTERN = re.compile(r"v[1-9][0-9]*")
"""A version name; match it with `fullmatch`."""


def version_number(name: str) -> int:
    """The N of `vN`; `InvalidVersionName` for anything else (`../x`, `v01`, `V1`)."""
    if not isinstance(name, str) or not VERSION_PATTERN.fullmatch(name):
        raise InvalidVersionName(str(name))
    return int(name[1:])


def version_name(number: int) -> str:
    if number < 1:
        raise ValueError("version numbers start at 1")
    return f"v{number}"
