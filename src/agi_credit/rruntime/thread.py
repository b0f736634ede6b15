"""The one thread that calls into embedded R: R is single-threaded and not re-entrant."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["RThread"]


class RThread:
    """A single worker thread that owns every call into the embedded R session.

    Start R first on the main thread (`rruntime.start()`): R's start-up installs signal
    handlers, which only the main thread may do. rpy2 disables R's C stack check, so this
    thread may call into R afterwards.
    """

    def __init__(self) -> None:
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="R")

    def run(self, function: Callable[..., T], *args: object) -> T:
        """`function(*args)` on the R thread; blocks until it returns."""
        return self.executor.submit(function, *args).result()
