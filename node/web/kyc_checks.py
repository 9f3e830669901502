"""Running a KYC check and waiting for the peers' answers: what the API and the console
both do when an officer submits a check.

The check and its queries are committed, the queries delivered at once (each peer
concurrently), and the caller waits until every peer asked has answered or refused, or
the timeout has passed, whichever comes first. Answers received by another process of
the node are seen by polling the database; the in-process ``answers`` feed only makes
the wait end promptly. The first view of the check is taken in the transaction that
writes it: a local check, complete at once, is one transaction.
"""

from __future__ import annotations

import asyncio

from ..federation.feed import Feed
from ..federation.sender import OutboxSender
from ..runtime import Node
from ..schemas.kyc import CheckCreate, CheckOut
from ..services.actors import Actor
from ..services.work import UnitOfWork

POLL_SECONDS = 0.25


async def run_check(
    node: Node, actor: Actor, body: CheckCreate, *, sender: OutboxSender | None, answers: Feed
) -> CheckOut:
    timeout = body.timeout_seconds or node.settings.kyc_timeout_seconds
    view, queued = await asyncio.to_thread(_start, node, actor, body, timeout)
    if sender is not None:
        sender.deliver_soon(queued, timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not view.complete and loop.time() < deadline:
        await answers.wait(min(POLL_SECONDS, deadline - loop.time()))
        view = await asyncio.to_thread(read_check, node, actor, view.id)
    return view


def _start(
    node: Node, actor: Actor, body: CheckCreate, timeout: float
) -> tuple[CheckOut, list[str]]:
    """Start and commit the check; its view as it stands then, taken in the same
    transaction (a local check is complete at once: it is never read back)."""
    with node.sessions() as session:
        service = UnitOfWork(node, session, actor).kyc()
        check, queued = service.start(body, timeout=timeout)
        view = service.view(check)
        session.commit()
        return view, queued


def read_check(node: Node, actor: Actor, check_uuid: str) -> CheckOut:
    with node.sessions() as session:
        service = UnitOfWork(node, session, actor).kyc()
        return service.view(service.get(check_uuid))
