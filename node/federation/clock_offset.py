"""How far a peer's clock is from ours, read off its answers, and naming the skew.

Messages carry their creation and expiry times and are refused beyond the clock-skew
allowance, so a peer whose clock is wrong looks, without this, like a peer refusing
our key (``key_expired``, ``not_yet_valid``) or sending bad receipts. The offset is
measured on every answer: the time the peer wrote on it (the HTTP ``Date``, or when it
sealed its first receipt) against the middle of the request by our clock. Both have a
resolution of one second, so an offset under two seconds is taken as none. The values
are unverified (the ``Date`` is not signed): they explain failures and feed a metric,
and decide nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

import protocol

RESOLUTION_SECONDS = 2.0


def measured_offset(response: httpx.Response, now: datetime, elapsed: float) -> float | None:
    """Seconds the peer's clock is ahead of ours (negative: behind), or None when its
    answer bears no time."""
    theirs = _date_header(response.headers.get("date")) or _receipt_time(response)
    if theirs is None:
        return None
    offset = (theirs - (now - timedelta(seconds=elapsed / 2))).total_seconds()
    return float(round(offset)) if abs(offset) >= RESOLUTION_SECONDS else 0.0


def skew_named(offset: float | None, allowance: int) -> str | None:
    """``clock ahead by N s`` or ``clock behind by N s`` when the offset is beyond the
    allowance (and so explains a refusal), else None."""
    if offset is None or abs(offset) <= allowance:
        return None
    return f"clock {'ahead' if offset > 0 else 'behind'} by {abs(offset):.0f} s"


def _date_header(value: str | None) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def _receipt_time(response: httpx.Response) -> datetime | None:
    try:
        receipt = next(
            r["receipt"] for r in response.json()["results"] if isinstance(r.get("receipt"), str)
        )
        created = protocol.peek_header(receipt.encode("utf-8")).created_at
    except (ValueError, KeyError, TypeError, AttributeError, StopIteration, protocol.ProtocolError):
        return None
    return datetime.fromtimestamp(created, UTC)
