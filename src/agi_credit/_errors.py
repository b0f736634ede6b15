"""The root of every error agi-credit raises on purpose.

    AgiCreditError
    ├── data.DataError            a dataset is missing or malformed
    ├── store.StoreError          the model store refused an operation
    │   ├── VersionNotFound
    │   ├── InvalidVersionName
    │   ├── VersionRejected
    │   └── EmptyStore
    ├── rruntime.RError           R failed: a script, readRDS or predict
    └── training.TrainingError    a step of the training job failed

Each carries a message meant for the person at the terminal; the CLI prints it and exits 1.
"""

from __future__ import annotations


class AgiCreditError(Exception):
    """Base class of agi-credit's own errors."""
