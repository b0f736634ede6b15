"""The auth room: the JWT sidecar with the origin's REST API in front of the predictor."""

from __future__ import annotations

from agi_credit.auth.app import create_app
from agi_credit.auth.config import AuthConfig, load_config
from agi_credit.auth.errors import InsecureConfiguration
from agi_credit.auth.server import run
from agi_credit.auth.tokens import TokenIssuer
from agi_credit.auth.users import ROLES, Users, add_user, set_disabled

__all__ = [
    "ROLES",
    "AuthConfig",
    "InsecureConfiguration",
    "TokenIssuer",
    "Users",
    "add_user",
    "create_app",
    "load_config",
    "run",
    "set_disabled",
]
