"""Sliding-window rate limits, in memory (one sidecar per predictor pod)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class SlidingWindow:
    """At most `limit` events per `window` seconds for each key."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, *, now: float | None = None) -> int | None:
        """Seconds until `key` may act again, or None when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.get(key)
            if events is None:
                return None
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) < self.limit:
                return None
            return max(1, math.ceil(events[0] + self.window - now))

    def record(self, key: str, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if key not in self._events and len(self._events) >= self.max_keys:
                self._forget_idle(now)
            self._events.setdefault(key, deque()).append(now)

    def reset(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)

    def _forget_idle(self, now: float) -> None:
        idle = [
            k for k, events in self._events.items() if not events or events[-1] <= now - self.window
        ]
        for key in idle:
            del self._events[key]
