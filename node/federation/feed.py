"""Wake-ups for live clients (Server-Sent Events) when inbound alerts arrive.

The stream itself reads new alerts from the database, so it also sees alerts received
by another process sharing the database; this in-process signal only makes it prompt.
"""

from __future__ import annotations

import asyncio


class AlertFeed:
    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    def notify(self) -> None:
        for event in list(self._waiters):
            event.set()

    async def wait(self, timeout: float) -> None:
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(event)
