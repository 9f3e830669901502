"""Account management for admins: create, change role, clearance or name, disable and
enable, reset a password (the user chooses a new one at the next sign-in), lift a lock-out.
``UserAccounts`` audits each change under the admin's name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from protocol import HANDLING_LEVELS

from ...roles import ROLES
from ...services.errors import Conflict, InvalidInput, NotFound
from ...services.passwords import WeakPassword, check_strength
from ...services.users import LANGUAGES, UserAccounts, check_username, is_locked
from ...web.params import RowId
from ..auth import AdminViewer, AdminWork, ConsoleWork, Viewer
from ..csrf import AdminForm, Posted
from ..i18n import N_
from ..pages import Missing, page, redirect
from .session import WEAK_PASSWORD

router = APIRouter(prefix="/console/users")

PASSWORDS_DIFFER = N_("The two passwords differ.")
BAD_USERNAME = N_("2 to 64 characters: lower-case letters, digits, dot, dash or underscore.")
USER_ERRORS = {
    "username": BAD_USERNAME,
    "role": N_("Choose one of the options."),
    "language": N_("Choose one of the options."),
    "clearance": N_("Choose one of the options."),
    "user": N_("You cannot disable your own account."),
}
LAST_ADMIN = N_("The node must keep at least one active administrator.")
TAKEN = N_("This user name is already taken.")


def _user(accounts: UserAccounts, viewer: Viewer, user_id: RowId) -> Any:
    try:
        return accounts.get(user_id)
    except NotFound:
        raise Missing(viewer) from None


def state_of(user: Any, now: Any) -> str:
    return "disabled" if user.disabled_at else "locked" if is_locked(user, now) else "active"


@router.get("", include_in_schema=False)
def users(work: AdminWork) -> Response:
    rows = [(u, state_of(u, work.now)) for u in work.users().all()]
    return page(work.request, work.viewer, "users/list.html", rows=rows)


@router.get("/new", include_in_schema=False)
def new_user(request: Request, viewer: AdminViewer) -> Response:
    return _new_page(request, viewer, {"role": "officer", "language": ""}, {})


def _new_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return page(
        request,
        viewer,
        "users/new.html",
        status_code=status_code,
        values=values,
        errors=errors,
        roles=ROLES,
        clearances=HANDLING_LEVELS,
        languages=LANGUAGES,
    )


def _password_error(posted: Posted, password: str) -> str | None:
    if password != str(posted.form.get("confirm_password") or ""):
        return PASSWORDS_DIFFER
    return None


@router.post("", include_in_schema=False)
def create_user(posted: AdminForm) -> Response:
    work, viewer, t = posted.work, posted.viewer, posted.viewer.t
    values = {
        name: posted.text(name)
        for name in ("username", "full_name", "role", "clearance", "language")
    }
    password = str(posted.form.get("password") or "")
    errors: dict[str, str] = {}
    try:
        check_username(values["username"])
    except InvalidInput:
        errors["username"] = t.gettext(BAD_USERNAME)
    if problem := _password_error(posted, password):
        errors["confirm_password"] = t.gettext(problem)
    else:
        try:
            check_strength(password, username=values["username"])
        except WeakPassword as exc:
            errors["password"] = t.gettext(WEAK_PASSWORD[exc.code])
    if not errors:
        try:
            user = work.users().create(
                values["username"],
                values["role"],
                password,
                full_name=values["full_name"],
                language=values["language"] or None,
                must_change_password=True,
                clearance=values["clearance"] or None,
            )
        except InvalidInput as exc:
            errors[exc.field] = t.gettext(
                USER_ERRORS.get(exc.field, N_("This value is not valid."))
            )
        except Conflict:
            errors["username"] = t.gettext(TAKEN)
    if errors:
        work.rollback()
        return _new_page(work.request, viewer, values, errors, status_code=422)
    work.commit()
    return redirect(f"/console/users/{user.id}?done=create")


@router.get("/{user_id}", include_in_schema=False)
def user_page(work: AdminWork, user_id: RowId) -> Response:
    user = _user(work.users(), work.viewer, user_id)
    return _user_page(work, user, {})


def _user_page(
    work: ConsoleWork, user: Any, errors: dict[str, str], status_code: int = 200
) -> Response:
    return page(
        work.request,
        work.viewer,
        "users/edit.html",
        status_code=status_code,
        user=user,
        state=state_of(user, work.now),
        errors=errors,
        roles=ROLES,
        clearances=HANDLING_LEVELS,
    )


def _change(posted: Posted, user_id: int, action: str) -> Response:
    work, viewer, t = posted.work, posted.viewer, posted.viewer.t
    accounts = work.users()
    user = _user(accounts, viewer, user_id)
    errors: dict[str, str] = {}
    try:
        if action == "role":
            accounts.set_role(user_id, posted.text("role"))
            accounts.set_full_name(user_id, posted.text("full_name"))
        elif action == "clearance":
            accounts.set_clearance(user_id, posted.text("clearance"))
        elif action == "disable":
            accounts.disable(user_id)
        elif action == "enable":
            accounts.enable(user_id)
        elif action == "unlock":
            accounts.unlock(user_id)
        elif action == "password":
            password = str(posted.form.get("password") or "")
            if problem := _password_error(posted, password):
                errors["confirm_password"] = t.gettext(problem)
            else:
                accounts.reset_password(user_id, password)
    except WeakPassword as exc:
        errors["password"] = t.gettext(WEAK_PASSWORD[exc.code])
    except InvalidInput as exc:
        message = (
            LAST_ADMIN
            if "admin" in exc.message
            else USER_ERRORS.get(exc.field, N_("This value is not valid."))
        )
        errors[action if action in ("role", "clearance") else "form"] = t.gettext(message)
    if errors:
        work.rollback()
        return _user_page(work, _user(accounts, viewer, user_id), errors, 422)
    work.commit()
    del user
    return redirect(f"/console/users/{user_id}?done={action}")


@router.post("/{user_id}/role", include_in_schema=False)
def change_role(posted: AdminForm, user_id: RowId) -> Response:
    return _change(posted, user_id, "role")


@router.post("/{user_id}/clearance", include_in_schema=False)
def change_clearance(posted: AdminForm, user_id: int) -> Response:
    return _change(posted, user_id, "clearance")


@router.post("/{user_id}/disable", include_in_schema=False)
def disable(posted: AdminForm, user_id: RowId) -> Response:
    return _change(posted, user_id, "disable")


@router.post("/{user_id}/enable", include_in_schema=False)
def enable(posted: AdminForm, user_id: RowId) -> Response:
    return _change(posted, user_id, "enable")


@router.post("/{user_id}/unlock", include_in_schema=False)
def unlock(posted: AdminForm, user_id: RowId) -> Response:
    return _change(posted, user_id, "unlock")


@router.post("/{user_id}/password", include_in_schema=False)
def reset_password(posted: AdminForm, user_id: RowId) -> Response:
    return _change(posted, user_id, "password")
