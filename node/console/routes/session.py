"""Signing in and out, the language, the user's own account, and static files."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from ...services.actors import Actor
from ...services.errors import InvalidInput
from ...services.passwords import WeakPassword
from ...services.users import LANGUAGES, TooManyAttempts
from ...web.request import NodeDep, RequestWork, SessionDep
from ..auth import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    AnyViewer,
    AnyWork,
    anonymous_translator,
    resolve_viewer,
    sessions_for,
    set_cookie,
)
from ..csrf import LOGIN_COOKIE, AnyForm, login_form, new_login_token
from ..i18n import N_, translator
from ..pages import home_path, page, redirect
from ..templating import render

router = APIRouter()
STATIC_DIR = Path(__file__).parent.parent / "static"
STATIC_FILES = {p.name for p in STATIC_DIR.iterdir() if p.is_file()}
LANGUAGE_COOKIE_AGE = 365 * 86400
SIGN_IN_ACTOR = Actor("console", "system")  # sign-in entries name the user instead

WEAK_PASSWORD = {
    "too_short": N_("Use at least 12 characters."),
    "too_long": N_("This password is too long."),
    "contains_username": N_("The password must not contain your user name."),
    "too_simple": N_("Use more different characters."),
}
# An unknown name, a wrong password and a locked account get the same answer, so it
# does not tell which names exist or are locked (the service spends the same time).
WRONG_CREDENTIALS = N_(
    "Wrong user name or password. After 5 failed attempts in a row, an account is "
    "locked for 15 minutes."
)
SIGN_IN_REFUSED = {
    "invalid": WRONG_CREDENTIALS,
    "locked": WRONG_CREDENTIALS,
    "disabled": N_("This account is disabled. Ask an administrator."),
}
TOO_MANY_ATTEMPTS = N_("Too many wrong passwords: try again in 15 minutes.")


def _safe_next(value: object) -> str | None:
    if (
        isinstance(value, str)
        and value.startswith("/console/")
        and "//" not in value
        and "\\" not in value
        and len(value) < 300
    ):
        return value
    return None


@router.get("/console/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    if name not in STATIC_FILES:
        return Response(status_code=404)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(
        (STATIC_DIR / name).read_bytes(),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/console", include_in_schema=False)
@router.get("/console/", include_in_schema=False)
def home(viewer: AnyViewer) -> Response:
    return redirect(home_path(viewer.role))


def _login_page(
    request: Request,
    *,
    lang: str | None = None,
    error: str | None = None,
    username: str = "",
    next_path: str | None = None,
    status_code: int = 200,
) -> Response:
    t = translator(lang) if lang else anonymous_translator(request)
    token = new_login_token()
    response = render(
        request,
        t,
        "login.html",
        status_code=status_code,
        login_token=token,
        error=t.gettext(error) if error else None,
        username=username,
        next_path=next_path or "",
    )
    set_cookie(request, response, LOGIN_COOKIE, token, path="/console/login")
    if lang:
        set_cookie(request, response, LANGUAGE_COOKIE, lang, max_age=LANGUAGE_COOKIE_AGE)
    return response


@router.get("/console/login", include_in_schema=False)
def login_page(
    request: Request, node: NodeDep, lang: str | None = None, next: str | None = None
) -> Response:
    if resolve_viewer(request, node) is not None and lang is None:
        return redirect(_safe_next(next) or "/console/")
    return _login_page(
        request, lang=lang if lang in LANGUAGES else None, next_path=_safe_next(next)
    )


@router.post("/console/login", include_in_schema=False)
def sign_in(
    request: Request,
    node: NodeDep,
    session: SessionDep,
    form: Annotated[FormData, Depends(login_form)],
) -> Response:
    username = str(form.get("username") or "")[:200]
    password = str(form.get("password") or "")
    next_path = _safe_next(form.get("next"))
    work = RequestWork(request, node, session, SIGN_IN_ACTOR)
    result = work.users().sign_in(username, password)
    if result.user is None:
        work.commit()  # the failure and any lock-out are recorded
        return _login_page(
            request,
            error=SIGN_IN_REFUSED[result.outcome],
            username=username.strip()[:64],
            next_path=next_path,
            status_code=403 if result.outcome == "disabled" else 401,
        )
    secret = sessions_for(node, session).open(result.user)
    work.commit()
    target = (
        "/console/account/password"
        if result.user.must_change_password
        else (next_path or "/console/")
    )
    response = redirect(target)
    set_cookie(request, response, SESSION_COOKIE, secret)
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return response


@router.post("/console/logout", include_in_schema=False)
def sign_out(posted: AnyForm) -> Response:
    work = posted.work
    sessions_for(work.node, work.session).close(work.request.cookies.get(SESSION_COOKIE))
    accounts = work.users()
    user = accounts.get(posted.viewer.session.user_id)
    accounts.audit.record(
        str(work.actor), "user.sign_out", now=work.now, target_kind="user", target_id=user.username
    )
    work.commit()
    response = redirect("/console/login")
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


@router.post("/console/language", include_in_schema=False)
def choose_language(request: Request, posted: AnyForm) -> Response:
    language = posted.text("language")
    accounts = posted.work.users()
    try:
        accounts.set_language(accounts.get(posted.viewer.session.user_id), language)
    except InvalidInput:
        language = ""
    posted.work.commit()
    back = _safe_next(posted.text("back")) or "/console/"
    response: RedirectResponse = redirect(back)
    if language:
        set_cookie(request, response, LANGUAGE_COOKIE, language, max_age=LANGUAGE_COOKIE_AGE)
    else:
        response.delete_cookie(LANGUAGE_COOKIE, path="/console")
    return response


@router.get("/console/account", include_in_schema=False)
def account(work: AnyWork) -> Response:
    viewer = work.viewer
    user = work.users().get(viewer.session.user_id)
    return page(
        work.request, viewer, "account.html", user=user, fingerprint=work.node.identity.fingerprint
    )


@router.get("/console/account/password", include_in_schema=False)
def password_page(request: Request, viewer: AnyViewer) -> Response:
    return page(request, viewer, "password.html", errors={})


@router.post("/console/account/password", include_in_schema=False)
def change_password(posted: AnyForm) -> Response:
    work, viewer = posted.work, posted.viewer
    current, new = (
        str(posted.form.get("current_password") or ""),
        str(posted.form.get("new_password") or ""),
    )
    errors: dict[str, str] = {}
    status_code = 422
    if new != str(posted.form.get("confirm_password") or ""):
        errors["confirm_password"] = N_("The two new passwords differ.")
    else:
        accounts = work.users()
        try:
            accounts.change_own_password(
                accounts.get(viewer.session.user_id),
                current,
                new,
                session_id=viewer.session.session_id,
            )
        except WeakPassword as exc:
            errors["new_password"] = WEAK_PASSWORD[exc.code]
        except TooManyAttempts:
            errors["current_password"], status_code = TOO_MANY_ATTEMPTS, 429
        except InvalidInput as exc:
            errors[exc.field] = (
                N_("Wrong password.")
                if exc.field == "current_password"
                else N_("Choose a password different from the current one.")
            )
    if "current_password" in errors:
        work.commit()  # the failed attempt and any lock-out are recorded
    elif errors:
        work.rollback()
    if errors:
        return page(
            work.request,
            viewer,
            "password.html",
            status_code=status_code,
            errors={k: viewer.t.gettext(v) for k, v in errors.items()},
        )
    work.commit()
    return redirect("/console/account?changed=1")
