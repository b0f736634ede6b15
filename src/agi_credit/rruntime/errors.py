"""Errors of the R runtime: R's own errors, translated where rpy2 is called."""

from __future__ import annotations

from agi_credit._errors import AgiCreditError


class RError(AgiCreditError):
    """R failed: readRDS, bake or predict raised, or the object is not a usable model."""
