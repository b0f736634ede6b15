"""Sliding-window rate limits, in memory (one sidecar per predictor pod), with a hard cap on
the number of keys they remember."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque


class SlidingWindow:
    """At most `limit` events per `window` seconds for each key, for at most `max_keys` keys.

    Keys are kept from the least to the most recently active. A new key beyond `max_keys`
    pushes out the least recently active one: an idle key if there is one, otherwise the
    oldest active key, whose count starts again from zero. Memory never grows past the cap.
    """

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str, *, now: float | None = None) -> int | None:
        """Count one event for `key` and answer None when it is within its limit; otherwise
        count nothing and answer the seconds until it may act again."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.get(key)
            if events is None:
                while len(self._events) >= self.max_keys:
                    self._events.popitem(last=False)
                events = self._events[key] = deque()
            else:
                while events and events[0] <= now - self.window:
                    events.popleft()
                if len(events) >= self.limit:
                    return max(1, math.ceil(events[0] + self.window - now))
                self._events.move_to_end(key)
            events.append(now)
            return None

    def reset(self, key: str) -> None:
        """Forget `key`'s events."""
        with self._lock:
            self._events.pop(key, None)

    def __len__(self) -> int:
        """The keys remembered."""
        return len(self._events)
