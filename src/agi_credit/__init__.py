"""agi-credit: train, govern and serve R credit-risk models on Kubernetes."""

from __future__ import annotations

from agi_credit._errors import AgiCreditError

__version__ = "0.1.0"

__all__ = ["AgiCreditError", "__version__"]
