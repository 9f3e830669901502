"""Who is using the console: the session cookie, the signed-in ``Viewer``, role rules.

Every console route declares the permission it needs (``node.roles``) by what it takes:
a ``Viewer`` (``Reader``, ``Writer``, ``AdminViewer``, ``AuditorViewer``, ``AnyViewer``)
or the request's unit of work with its viewer (``ReaderWork`` …), as the API does with
``Allow``. Deny by default: without a live session a page redirects to the sign-in form
(a stream or fragment answers 401), with a role that lacks the permission it answers
403. A user whose password was reset must change it before anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from ..roles import GRANTS, Permission, may
from ..runtime import Node
from ..services.actors import Actor
from ..services.console_sessions import ConsoleSessions, OpenSession
from ..web.request import NodeDep, RequestWork, SessionDep
from .i18n import Translator, negotiate, translator

SESSION_COOKIE = "kpnet_session"
LANGUAGE_COOKIE = "kpnet_lang"
COOKIE_PATH = "/console"
PASSWORD_PAGE = "/console/account/password"  # noqa: S105 (a page, not a password)
# What a user whose password was reset may still reach.
ALLOWED_BEFORE_PASSWORD_CHANGE = frozenset({PASSWORD_PAGE, "/console/logout"})


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a request, and the language pages are shown in."""

    session: OpenSession
    t: Translator

    @property
    def username(self) -> str:
        return self.session.username

    @property
    def role(self) -> str:
        return self.session.role

    @property
    def actor(self) -> Actor:
        return Actor(self.session.username, self.session.role, self.session.clearance)

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    def may(self, permission: str) -> bool:
        """Whether this user holds ``permission`` (menus and buttons ask, as routes do)."""
        return may(self.role, Permission(permission))


class SignInRequired(Exception):
    """No live session: send the browser to the sign-in form."""

    def __init__(self, next_path: str, translator: Translator) -> None:
        super().__init__(next_path)
        self.next_path, self.t = next_path, translator


class Forbidden(Exception):
    """Signed in, but this role may not do this (or the form's CSRF token is wrong)."""

    def __init__(self, viewer: Viewer | None, translator: Translator, reason: str = "role") -> None:
        super().__init__(reason)
        self.viewer, self.t, self.reason = viewer, translator, reason


class PasswordChangeRequired(Exception):
    pass


def sessions_for(node: Node, session: Session) -> ConsoleSessions:
    return ConsoleSessions.configured(session, node.now(), node.settings)


def anonymous_translator(request: Request) -> Translator:
    """The language of someone not signed in: their choice (cookie), else the browser's."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return translator(chosen or negotiate(request.headers.get("accept-language")))


def resolve_viewer(request: Request, node: Node) -> Viewer | None:
    with node.sessions() as session:
        opened = sessions_for(node, session).resolve(request.cookies.get(SESSION_COOKIE))
        session.commit()
    if opened is None:
        return None
    language = (
        opened.language
        or request.cookies.get(LANGUAGE_COOKIE)
        or negotiate(request.headers.get("accept-language"))
    )
    return Viewer(opened, translator(language))


class Require:
    """Dependency admitting signed-in users whose role holds ``permission``."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    @property
    def roles(self) -> frozenset[str]:
        """The roles admitted: those the policy grants the permission to."""
        return frozenset(GRANTS[self.permission])

    def __call__(self, request: Request, node: NodeDep) -> Viewer:
        viewer = resolve_viewer(request, node)
        if viewer is None:
            raise SignInRequired(request.url.path, anonymous_translator(request))
        if (
            viewer.session.must_change_password
            and request.url.path not in ALLOWED_BEFORE_PASSWORD_CHANGE
        ):
            raise PasswordChangeRequired()
        if not may(viewer.role, self.permission):
            raise Forbidden(viewer, viewer.t)
        return viewer


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or bool(
        request.app.state.node.settings.console_secure_cookies
    )


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    path: str = COOKIE_PATH,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )


def sign_in_url(next_path: str | None = None) -> str:
    if next_path and next_path.startswith("/console/") and not next_path.startswith("//"):
        return f"/console/login?next={quote(next_path)}"
    return "/console/login"


class ConsoleWork(RequestWork):
    """The unit of work of a console request, with the signed-in user it acts for."""

    def __init__(self, request: Request, node: Node, session: Session, viewer: Viewer) -> None:
        super().__init__(request, node, session, viewer.actor)
        self.viewer = viewer


def work_for(require: Require) -> Callable[..., ConsoleWork]:
    """Dependency: the viewer admitted by ``require``, then the request's unit of work."""

    # A default, not an Annotated alias: the closure's annotations are strings here.
    def dependency(
        request: Request, node: NodeDep, session: SessionDep, viewer: Viewer = Depends(require)
    ) -> ConsoleWork:
        return ConsoleWork(request, node, session, viewer)

    return dependency


READERS = Require(Permission.READ)
WRITERS = Require(Permission.WRITE)
ADMINS = Require(Permission.ADMINISTER)
AUDITORS = Require(Permission.AUDIT)
EVERYONE = Require(Permission.SIGNED_IN)

Reader = Annotated[Viewer, Depends(READERS)]
Writer = Annotated[Viewer, Depends(WRITERS)]
AdminViewer = Annotated[Viewer, Depends(ADMINS)]
AuditorViewer = Annotated[Viewer, Depends(AUDITORS)]
AnyViewer = Annotated[Viewer, Depends(EVERYONE)]

READER_WORK = work_for(READERS)
WRITER_WORK = work_for(WRITERS)
ADMIN_WORK = work_for(ADMINS)
AUDITOR_WORK = work_for(AUDITORS)
ANY_WORK = work_for(EVERYONE)

ReaderWork = Annotated[ConsoleWork, Depends(READER_WORK)]
WriterWork = Annotated[ConsoleWork, Depends(WRITER_WORK)]
AdminWork = Annotated[ConsoleWork, Depends(ADMIN_WORK)]
AuditorWork = Annotated[ConsoleWork, Depends(AUDITOR_WORK)]
AnyWork = Annotated[ConsoleWork, Depends(ANY_WORK)]
