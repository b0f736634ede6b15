"""`agi-credit` run to be killed with SIGKILL at one step of the training job.

    python tests/training/killed_job.py STEP train --data ... --store ...

When the job reaches STEP, its whole process group (the job and R) gets SIGKILL, as a
container does when it is OOM-killed or its node dies: nothing unwinds. The code that runs
is the real job; only the moment of death is chosen.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from agi_credit import rruntime
from agi_credit.cli import main
from agi_credit.store import ModelStore
from agi_credit.training import job


def die() -> NoReturn:
    os.killpg(os.getpgrp(), signal.SIGKILL)
    raise AssertionError("unreachable")


def during_train_r() -> None:
    """At train.R's first line of output: R is fitting."""

    def relay_then_die(stream: Any, tail: Any, log: Callable[[str], None]) -> None:
        stream.readline()
        die()

    job._relay = relay_then_die


def during_validation() -> None:
    """Once R has read the trained model back, before it is scored on the holdout."""
    load = rruntime.RModel.load

    def load_then_die(path: Path) -> Any:
        load(path)
        die()

    rruntime.RModel.load = load_then_die  # type: ignore[method-assign,assignment]


def before_the_commit() -> None:
    """Artifact and report written into the store, metadata.json not yet."""
    ModelStore._write_metadata = lambda self, metadata: die()  # type: ignore[method-assign,assignment]


def during_the_metadata_write() -> None:
    """The new metadata.json fully written beside the old one, not yet renamed over it."""
    replace = os.replace

    def replace_or_die(source: Any, target: Any) -> None:
        if Path(target).name == "metadata.json":
            die()
        replace(source, target)

    os.replace = replace_or_die


STEPS = {
    "train.R": during_train_r,
    "validation": during_validation,
    "commit": before_the_commit,
    "metadata-write": during_the_metadata_write,
}

if __name__ == "__main__":
    STEPS[sys.argv[1]]()
    sys.argv = ["agi-credit", *sys.argv[2:]]
    main()
