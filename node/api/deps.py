"""Request dependencies of the API: the caller, and the request's unit of work.

Every ``/api/v1`` route declares the permission it needs (``node.roles``) by the unit
of work it takes: ``AsReader``, ``AsWriter``, ``AsAdmin``, ``AsAuditor`` or
``AsAnyRole``. A missing or invalid token answers 401, a valid token whose role lacks
the permission 403 (deny by default).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..roles import GRANTS, Permission, may
from ..services.actors import Actor
from ..services.tokens import authenticate
from ..web.request import NodeDep, RequestWork, SessionDep

bearer = HTTPBearer(auto_error=False, description="An API token: `kpnet token create`")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
LAST_USED_GRANULARITY = timedelta(minutes=5)


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


class Allow:
    """Dependency admitting callers whose token's role holds ``permission``."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    @property
    def roles(self) -> frozenset[str]:
        """The roles admitted: those the policy grants the permission to."""
        return frozenset(GRANTS[self.permission])

    def __call__(
        self,
        node: NodeDep,
        credentials: Bearer,
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
            actor = Actor(token.name, token.role, token.clearance)
        if not may(actor.role, self.permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {actor.role} may not do this")
        return actor


def work_as(permission: Permission) -> Callable[..., RequestWork]:
    """Dependency: the caller's permission checked, then the request's unit of work."""
    allow = Allow(permission)

    # A default, not an Annotated alias: the closure's annotations are strings here.
    def dependency(
        request: Request, node: NodeDep, session: SessionDep, actor: Actor = Depends(allow)
    ) -> RequestWork:
        return RequestWork(request, node, session, actor)

    return dependency


AsReader = Annotated[RequestWork, Depends(work_as(Permission.READ))]
AsWriter = Annotated[RequestWork, Depends(work_as(Permission.WRITE))]
AsAdmin = Annotated[RequestWork, Depends(work_as(Permission.ADMINISTER))]
AsAuditor = Annotated[RequestWork, Depends(work_as(Permission.AUDIT))]
AsAnyRole = Annotated[RequestWork, Depends(work_as(Permission.SIGNED_IN))]
