"""Sliding-window counters for ``limit`` rules, behind a small port so a shared store can replace them.

The in-process store keeps, per key, the timestamps of the most recent hits (at most ``max + 1`` are
needed to know whether a window holds more than ``max``). A Redis store implementing the same
protocol shares the counts between gateway processes.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

__all__ = ["InMemoryLimitStore", "LimitStore"]


class LimitStore(Protocol):
    """Counts hits per key in a sliding window."""

    def hit(self, key: str, *, now: float, window: float, cap: int) -> int:
        """Record one hit at ``now`` (seconds) and return the hits in ``(now - window, now]``, this one
        included; the answer may stop counting at ``cap`` (callers only ask "more than cap - 1?").
        A store that cannot count raises a :class:`~lictor.errors.LictorError`."""
        ...


class InMemoryLimitStore:
    """Exact sliding-log counters held in this process; thread-safe; bounded by ``max_keys``."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def hit(self, key: str, *, now: float, window: float, cap: int) -> int:
        with self._lock:
            log = self._hits.get(key)
            if log is None:
                if len(self._hits) >= self._max_keys:
                    self._evict(now, window)
                log = self._hits[key] = deque(maxlen=max(cap, 1))
            horizon = now - window
            while log and log[0] <= horizon:
                log.popleft()
            log.append(now)
            return len(log)

    def _evict(self, now: float, window: float) -> None:
        """Drop keys whose newest hit is outside the window; if none, drop the oldest half."""
        stale = [k for k, log in self._hits.items() if not log or log[-1] <= now - window]
        for k in stale or list(self._hits)[: len(self._hits) // 2]:
            del self._hits[k]

    def clear(self) -> None:
        with self._lock:
            self._hits.clear()
