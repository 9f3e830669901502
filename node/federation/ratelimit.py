"""Per-peer token buckets for the inbound endpoint (in memory, per process)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

Seconds = Callable[[], float]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` messages per second per key, with bursts up to ``burst``.

    ``clock`` gives the time in seconds: the node passes its own clock, as to everything
    else, so a test sets the time instead of sleeping. A clock that steps back refills
    nothing (and takes nothing away)."""

    def __init__(self, rate: float, burst: float, clock: Seconds) -> None:
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return 0 if allowed, else the seconds to wait."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(self.burst, now))
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = max(now, bucket.updated)
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / self.rate
