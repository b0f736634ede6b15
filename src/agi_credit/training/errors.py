"""Errors of the training job."""

from __future__ import annotations

from agi_credit._errors import AgiCreditError


class TrainingError(AgiCreditError):
    """A step of the training job failed; the store was left as it was."""
