"""Request-scoped parts of both web surfaces: the node, one database session per
request, and the request's unit of work.

``RequestWork.commit`` commits the request's transaction and then has this process's
outbox sender deliver what it queued: at its next round (``commit()``), or at once for
messages someone is waiting on (``commit(deliver=[...])``: KYC queries, disclosures).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from ..runtime import Node
from ..services.actors import Actor
from ..services.work import UnitOfWork


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


def get_session(node: NodeDep) -> Iterator[Session]:
    """One session per request; the route commits, anything else is rolled back."""
    with node.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def outbox_sender(request: Request) -> Any:
    """This process's outbox sender, or None when delivery is disabled."""
    return getattr(request.app.state, "sender", None)


def deliver_soon(request: Request, message_ids: Sequence[str]) -> None:
    """Deliver these messages at once (someone waits on them)."""
    sender = outbox_sender(request)
    if sender is not None and message_ids:
        sender.deliver_soon(list(message_ids), request.app.state.node.settings.kyc_timeout_seconds)


class RequestWork(UnitOfWork):
    """The unit of work of one request: its session, its actor, its moment."""

    def __init__(self, request: Request, node: Node, session: Session, actor: Actor) -> None:
        super().__init__(node, session, actor)
        self.request = request

    def commit(self, *, deliver: Sequence[str] = ()) -> None:
        """Commit, then wake the sender (and deliver ``deliver`` at once)."""
        self.session.commit()
        sender = outbox_sender(self.request)
        if sender is not None:
            sender.wake()
        deliver_soon(self.request, deliver)

    def rollback(self) -> None:
        self.session.rollback()
