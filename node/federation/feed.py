"""Wake-ups for clients waiting on something a peer sends: live alert streams
(Server-Sent Events) and KYC checks waiting for answers.

Waiters read what they wait for from the database, so they also see what another
process sharing the database received; this in-process signal only makes them prompt.
A waiter that ``wait``s misses a notice given while it was busy; one that ``subscribe``s
holds an event the feed sets on every notice (the live streams' fan-out: a notice that
comes while it reads is still there when it waits again).
"""

from __future__ import annotations

import asyncio


class Feed:
    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    def notify(self) -> None:
        for event in list(self._waiters):
            event.set()

    async def wait(self, timeout: float) -> None:
        event = self.subscribe()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self.unsubscribe(event)

    def subscribe(self) -> asyncio.Event:
        """An event set on every notice from now until ``unsubscribe`` (its holder
        clears it before it reads)."""
        event = asyncio.Event()
        self._waiters.add(event)
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)
