"""Wake-ups for clients waiting on something a peer sends: live alert streams
(Server-Sent Events) and KYC checks waiting for answers.

Waiters read what they wait for from the database, so they also see what another
process sharing the database received; this in-process signal only makes them prompt.
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
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(event)
