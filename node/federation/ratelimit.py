"""Token buckets for the inbound endpoint (in memory, per process): per peer, and per
client address for refusals before authentication."""

from __future__ import annotations

import asyncio
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
    nothing (and takes nothing away).

    At most ``max_keys`` buckets are kept (keys chosen by strangers must not grow
    memory): a new key first evicts buckets that have refilled (they hold nothing a
    fresh one would not), and when none has, shares one overflow bucket with every
    other key that found the table full."""

    OVERFLOW = "*"

    def __init__(
        self, rate: float, burst: float, clock: Seconds, max_keys: int | None = None
    ) -> None:
        self.rate, self.burst = rate, burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._swept_at = float("-inf")

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return 0 if allowed, else the seconds to wait."""
        with self._lock:
            bucket = self._refilled(key)
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / self.rate

    def wait(self, key: str) -> float:
        """The seconds until ``key`` has a whole token again (0: it has one now)."""
        with self._lock:
            bucket = self._refilled(key)
            return max(0.0, 1.0 - bucket.tokens) / self.rate

    def spend(self, key: str, cost: float) -> None:
        """Take up to ``cost`` tokens, as many as there are (what was already done
        cannot be refused; it makes the next request wait)."""
        with self._lock:
            bucket = self._refilled(key)
            bucket.tokens = max(0.0, bucket.tokens - cost)

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if self.max_keys is not None and len(self._buckets) >= self.max_keys:
                self._evict_full(now)
                if len(self._buckets) >= self.max_keys:
                    key = self.OVERFLOW
            bucket = self._buckets.setdefault(key, _Bucket(self.burst, now))
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.updated = max(now, bucket.updated)
        return bucket

    def _evict_full(self, now: float) -> None:
        if now - self._swept_at < 1.0:  # a full table is swept at most once a second
            return
        self._swept_at = now
        full = [
            key
            for key, b in self._buckets.items()
            if key != self.OVERFLOW
            and b.tokens + max(0.0, now - b.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class Tarpit:
    """Holds the answers to an address that is over its limit for a while (at most
    ``seconds``, and at most ``max_held`` answers at once; beyond, they go at once), so
    a client that ignores ``Retry-After`` cannot make the node answer as fast as it
    asks. Holding costs a waiting task, not work."""

    def __init__(self, seconds: float, max_held: int) -> None:
        self.seconds, self.max_held = seconds, max_held
        self._held = 0  # touched only from the event loop

    async def hold(self, wait: float) -> None:
        if self._held >= self.max_held:
            return
        self._held += 1
        try:
            await asyncio.sleep(min(wait, self.seconds))
        finally:
            self._held -= 1
