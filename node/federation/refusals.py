"""The aggregated audit entry for refusals made before a sender was authenticated.

Whoever can reach the federation endpoint can make it refuse things (oversize bodies,
junk batches, envelopes from unknown senders or with bad signatures). Those refusals
are counted in ``kpnet_federation_refused_unauthenticated_total{reason}`` as they
happen, and written to the audit log as one ``message.refusals`` entry per interval
(only when there were any, and once more as the process stops), so a stranger decides
neither how many audit rows there are nor what they say. Refusals of an authenticated
peer's message are still audited one by one (``message.rejected``).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import OperationalError

from ..runtime import Node
from ..services.audit import AuditLog

ACTION = "message.refusals"
ACTOR = "claimed:?"
log = logging.getLogger("kpnet.federation")


def write_refusal_summary(node: Node, interval_seconds: int) -> dict[str, int]:
    """Write one audit entry for the refusals counted since the last one (none if
    there were none); return what it counted, by reason."""
    counts = node.metrics.take_unaudited_refusals()
    if not counts:
        return counts
    try:
        with node.sessions() as session:
            AuditLog(session).record(
                ACTOR,
                ACTION,
                now=node.now(),
                detail={
                    "reasons": dict(sorted(counts.items())),
                    "total": sum(counts.values()),
                    "interval_seconds": interval_seconds,
                },
            )
            session.commit()
    except OperationalError as exc:  # counted in the metric all the same
        log.warning("refusal summary not audited (%s): %s", exc.orig, counts)
    return counts


async def summarise_refusals(node: Node, interval_seconds: int) -> None:
    """Every ``interval_seconds``, write the refusal summary; on cancellation (the
    process stopping), write what is left."""
    try:
        while True:
            await asyncio.sleep(interval_seconds)
            await asyncio.to_thread(write_refusal_summary, node, interval_seconds)
    except asyncio.CancelledError:
        await asyncio.to_thread(write_refusal_summary, node, interval_seconds)
        raise
