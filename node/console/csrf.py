"""Cross-site request forgery protection for every console form.

A signed-in user's forms carry the session's own token (``csrf_token``, kept with the
session on the server); the sign-in form, before any session exists, uses a random
token held in a cookie and repeated in the form (double submit). A POST whose token is
missing or wrong, or whose ``Origin`` names another host, is refused with 403 before
anything is read or written. Cookies are also ``SameSite=Strict``.
"""

# No `from __future__ import annotations`: FastAPI must see the closure's Depends(require).
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.datastructures import FormData

from .auth import (
    ADMIN_WORK,
    ANY_WORK,
    READER_WORK,
    WRITER_WORK,
    ConsoleWork,
    Forbidden,
    Viewer,
    anonymous_translator,
)

FIELD = "csrf_token"
HEADER = "x-csrf-token"
LOGIN_COOKIE = "kpnet_login"
MAX_FORM_FIELDS = 2000


def same_origin(request: Request) -> bool:
    """False when the browser says the form came from another site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def tokens_match(given: object, expected: str) -> bool:
    return (
        isinstance(given, str)
        and bool(given)
        and hmac.compare_digest(given.encode(), expected.encode())
    )


@dataclass(frozen=True)
class Posted:
    """A form a signed-in user sent, its CSRF token checked, and the request's unit of
    work."""

    work: ConsoleWork
    form: FormData

    @property
    def viewer(self) -> Viewer:
        return self.work.viewer

    def text(self, name: str, default: str = "") -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else default

    def texts(self, name: str) -> list[str]:
        return [v for v in self.form.getlist(name) if isinstance(v, str)]


def posted_form(work_dependency: Callable[..., ConsoleWork]) -> Callable[..., Awaitable[Posted]]:
    """Dependency: the permission check of ``work_dependency``, then the form and its CSRF
    token."""

    async def dependency(
        request: Request, work: Annotated[ConsoleWork, Depends(work_dependency)]
    ) -> Posted:
        viewer = work.viewer
        if not same_origin(request):
            raise Forbidden(viewer, viewer.t, "csrf")
        form = await request.form(max_fields=MAX_FORM_FIELDS)
        given = form.get(FIELD) or request.headers.get(HEADER)
        if not tokens_match(given, viewer.csrf_token):
            await form.close()  # drop any uploaded file at once
            raise Forbidden(viewer, viewer.t, "csrf")
        return Posted(work, form)

    return dependency


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


async def login_form(request: Request) -> FormData:
    """The sign-in form, its double-submit token checked against the cookie."""
    if not same_origin(request):
        raise Forbidden(None, anonymous_translator(request), "csrf")
    form = await request.form(max_fields=20)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not tokens_match(form.get(FIELD), expected):
        raise Forbidden(None, anonymous_translator(request), "csrf")
    return form


ReaderForm = Annotated[Posted, Depends(posted_form(READER_WORK))]
WriterForm = Annotated[Posted, Depends(posted_form(WRITER_WORK))]
AdminForm = Annotated[Posted, Depends(posted_form(ADMIN_WORK))]
AnyForm = Annotated[Posted, Depends(posted_form(ANY_WORK))]
