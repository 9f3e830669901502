"""What every console route shares: rendering for the viewer, redirects, the
navigation each role sees, and the error pages (sign-in needed, 403, 404)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..roles import Permission, may
from ..web.security_headers import SECURITY_HEADERS
from .auth import Forbidden, PasswordChangeRequired, SignInRequired, Viewer, sign_in_url
from .i18n import N_, Translator
from .templating import render

# (path, label, permission): the navigation, in order; each user sees what their role
# may open (the same permission the area's routes require).
NAVIGATION: tuple[tuple[str, str, Permission], ...] = (
    ("/console/alerts", N_("Alerts"), Permission.READ),
    ("/console/kyc", N_("KYC checks"), Permission.READ),
    ("/console/disclosures", N_("Disclosures"), Permission.READ),
    ("/console/licensees", N_("Licensees"), Permission.READ),
    ("/console/subjects", N_("Subjects"), Permission.READ),
    ("/console/import", N_("Import"), Permission.WRITE),
    ("/console/peers", N_("Peers"), Permission.ADMINISTER),
    ("/console/users", N_("Accounts"), Permission.ADMINISTER),
    ("/console/audit", N_("Audit log"), Permission.AUDIT),
)


class Missing(Exception):
    """A console page for an object that does not exist."""

    def __init__(self, viewer: Viewer) -> None:
        super().__init__("not found")
        self.viewer = viewer


def navigation(viewer: Viewer) -> list[tuple[str, str]]:
    return [(path, text) for path, text, permission in NAVIGATION if viewer.may(permission)]


def home_path(role: str) -> str:
    for path, _, permission in NAVIGATION:
        if may(role, permission):
            return path
    return "/console/account"


def page(
    request: Request, viewer: Viewer, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return render(
        request,
        viewer.t,
        template,
        status_code=status_code,
        viewer=viewer,
        csrf_token=viewer.csrf_token,
        nav=navigation(viewer),
        **context,
    )


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


def error_page(
    request: Request,
    translator: Translator,
    viewer: Viewer | None,
    status_code: int,
    title: str,
    message: str,
) -> Response:
    context: dict[str, Any] = {"title": title, "message": message, "viewer": viewer}
    if viewer is not None:
        context.update(csrf_token=viewer.csrf_token, nav=navigation(viewer))
    return render(request, translator, "error.html", status_code=status_code, **context)


def install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        if "text/event-stream" in request.headers.get("accept", ""):
            return Response(status_code=401, headers=SECURITY_HEADERS)
        return redirect(sign_in_url(exc.next_path if request.method == "GET" else None))

    @app.exception_handler(PasswordChangeRequired)
    async def _password(request: Request, exc: PasswordChangeRequired) -> Response:
        return redirect("/console/account/password")

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        message = (
            N_(
                "This form has expired or did not come from this console. "
                "Go back, reload the page and try again."
            )
            if exc.reason == "csrf"
            else N_("Your role does not give access to this page.")
        )
        return error_page(
            request,
            exc.t,
            exc.viewer,
            403,
            exc.t.gettext(N_("Access refused")),
            exc.t.gettext(message),
        )

    @app.exception_handler(Missing)
    async def _missing(request: Request, exc: Missing) -> Response:
        t = exc.viewer.t
        return error_page(
            request,
            t,
            exc.viewer,
            404,
            t.gettext(N_("Not found")),
            t.gettext(N_("There is nothing at this address.")),
        )
