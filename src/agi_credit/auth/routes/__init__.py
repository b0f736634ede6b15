"""The sidecar's routes, by audience: public (health, readiness, JWKS), the origin's API
(login, model info, predict, verify) and the KServe routes passed through to the predictor."""

from __future__ import annotations

from agi_credit.auth.routes.origin import router as origin
from agi_credit.auth.routes.passthrough import router as passthrough
from agi_credit.auth.routes.public import router as public

__all__ = ["origin", "passthrough", "public"]
