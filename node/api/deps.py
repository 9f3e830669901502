"""Request dependencies: the node, one database session per request, the caller.

Every ``/api/v1`` route declares the roles it admits with ``Allow(...)``: a missing or
invalid token answers 401, a valid token of another role 403 (deny by default).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ..runtime import Node
from ..services.records import Actor
from ..services.tokens import authenticate

bearer = HTTPBearer(auto_error=False, description="An API token: `kpnet token create`")
LAST_USED_GRANULARITY = timedelta(minutes=5)


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


def get_session(node: NodeDep) -> Iterator[Session]:
    """One session per request; the route commits, anything else is rolled back."""
    with node.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


class Allow:
    """Dependency admitting callers whose token has one of ``roles``."""

    def __init__(self, *roles: str) -> None:
        self.roles = frozenset(roles)

    def __call__(
        self,
        node: NodeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Actor:
        if credentials is None:
            raise _unauthorised("missing bearer token")
        now = node.now()
        with node.sessions() as session:
            token = authenticate(session, credentials.credentials, now)
            if token is None:
                raise _unauthorised("invalid, expired or revoked token")
            if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
                token.last_used_at = now
                session.commit()
            actor = Actor(token.name, token.role)
        if actor.role not in self.roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {actor.role} may not do this")
        return actor


READ_RECORDS = Allow("officer", "analyst")
WRITE_RECORDS = Allow("analyst")
ADMIN = Allow("admin")
AUDIT = Allow("auditor")
ANY_ROLE = Allow("admin", "analyst", "officer", "auditor")

Reader = Annotated[Actor, Depends(READ_RECORDS)]
Writer = Annotated[Actor, Depends(WRITE_RECORDS)]
Admin = Annotated[Actor, Depends(ADMIN)]
Auditor = Annotated[Actor, Depends(AUDIT)]
AnyRole = Annotated[Actor, Depends(ANY_ROLE)]


def wake_sender(request: Request) -> None:
    """Have this process's outbox sender deliver now rather than at its next round."""
    sender = getattr(request.app.state, "sender", None)
    if sender is not None:
        sender.wake()


def deliver_soon(request: Request, message_ids: list[str]) -> None:
    """Deliver these messages at once (someone waits on them: KYC and disclosures)."""
    sender = getattr(request.app.state, "sender", None)
    if sender is not None:
        sender.deliver_soon(message_ids, request.app.state.node.settings.kyc_timeout_seconds)
