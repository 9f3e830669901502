"""How much to send a peer at once, and how long to give it: sized from the link.

Each peer's link is measured by the deliveries themselves: envelope bytes delivered over
the time the whole request took (the upload, the receiver's work, the receipts coming
back), an effective rate that already counts compression and the answer. A batch is
sized to take about ``TARGET_SECONDS`` at the measured rate, so the fixed cost of a
request (the round trip, the receiver's work) is small beside it, and its deadline is
what that size should take at the measured rate, with room to spare. Success lets the
next batch grow (at most double); a timeout halves the rate believed and starts again
small, so a batch the receiver stored but whose answer was lost is re-sent small, not in
full.

Until a link has been measured it is taken to be as slow as GPRS (``ASSUMED_RATE``),
with three times the time that needs, so the first batch to a slow peer finishes
instead of timing out.
"""

from __future__ import annotations

from dataclasses import dataclass

TARGET_SECONDS = 25.0  # what one batch should take on the link
ASSUMED_RATE = 2000.0  # bytes per second, before any measurement (16 kbit/s)
MIN_BATCH_BYTES = 4 * 1024
START_BATCH_BYTES = 8 * 1024
HEADROOM = 3.0  # a batch's deadline: this many times what it should take
FIXED_SECONDS = 10.0  # and this for connecting, the round trip and the receiver's work
SMOOTHING = 0.5  # weight of the newest rate measurement


@dataclass
class LinkEstimate:
    max_batch_bytes: int
    rate: float | None = None  # bytes per second, measured
    budget: int = START_BATCH_BYTES

    def batch_bytes(self) -> int:
        """How many bytes of envelopes the next batch may hold (one envelope at least)."""
        return max(MIN_BATCH_BYTES, min(self.budget, self.max_batch_bytes))

    def deadline(self, size: int) -> float:
        """Seconds a request carrying ``size`` bytes of envelopes may take in all
        before it is given up."""
        return FIXED_SECONDS + HEADROOM * size / (self.rate or ASSUMED_RATE)

    def succeeded(self, sent: int, seconds: float) -> None:
        """A request carrying ``sent`` bytes of envelopes was answered in ``seconds``."""
        measured = sent / max(seconds, 0.001)
        self.rate = (
            measured if self.rate is None else SMOOTHING * measured + (1 - SMOOTHING) * self.rate
        )
        wanted = int(self.rate * TARGET_SECONDS)
        self.budget = max(MIN_BATCH_BYTES, min(wanted, 2 * max(sent, self.budget)))

    def timed_out(self, sent: int, seconds: float) -> None:
        """A request carrying ``sent`` bytes ran past its deadline after ``seconds``:
        the link carries less than that (it may just have become slower than it was
        measured), so believe it at most that fast, and half what it was, and send small."""
        ceiling = sent / max(seconds, 0.001)
        self.rate = ceiling if self.rate is None else min(self.rate / 2, ceiling)
        self.budget = MIN_BATCH_BYTES
