"""What every console route shares: rendering for the viewer, redirects, the
navigation each role sees, and the error pages (sign-in needed, 403, 404)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .auth import Forbidden, PasswordChangeRequired, SignInRequired, Viewer, sign_in_url
from .i18n import N_, Translator
from .templating import SECURITY_HEADERS, render

# (path, label, roles): the navigation, in order; each role sees what it may open.
NAVIGATION: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("/console/alerts", N_("Alerts"), frozenset({"officer", "analyst"})),
    ("/console/kyc", N_("KYC checks"), frozenset({"officer", "analyst"})),
    ("/console/disclosures", N_("Disclosures"), frozenset({"officer", "analyst"})),
    ("/console/licensees", N_("Licensees"), frozenset({"officer", "analyst"})),
    ("/console/subjects", N_("Subjects"), frozenset({"officer", "analyst"})),
    ("/console/import", N_("Import"), frozenset({"analyst"})),
    ("/console/peers", N_("Peers"), frozenset({"admin"})),
    ("/console/users", N_("Accounts"), frozenset({"admin"})),
    ("/console/audit", N_("Audit log"), frozenset({"auditor"})),
)
# Areas whose routes are not installed.
HIDDEN_AREAS: set[str] = set()


class Missing(Exception):
    """A console page for an object that does not exist."""

    def __init__(self, viewer: Viewer) -> None:
        super().__init__("not found")
        self.viewer = viewer


def navigation(viewer: Viewer) -> list[tuple[str, str]]:
    return [(path, text) for path, text, roles in NAVIGATION
            if viewer.role in roles and path not in HIDDEN_AREAS]


def home_path(role: str) -> str:
    for path, _, roles in NAVIGATION:
        if role in roles and path not in HIDDEN_AREAS:
            return path
    return "/console/account"


def page(request: Request, viewer: Viewer, template: str, *, status_code: int = 200,
         **context: Any) -> HTMLResponse:
    return render(request, viewer.t, template, status_code=status_code, viewer=viewer,
                  csrf_token=viewer.csrf_token, nav=navigation(viewer), **context)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


def error_page(request: Request, translator: Translator, viewer: Viewer | None,
               status_code: int, title: str, message: str) -> Response:
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
        message = (N_("This form has expired or did not come from this console. "
                      "Go back, reload the page and try again.")
                   if exc.reason == "csrf" else
                   N_("Your role does not give access to this page."))
        return error_page(request, exc.t, exc.viewer, 403, exc.t.gettext(N_("Access refused")),
                          exc.t.gettext(message))

    @app.exception_handler(Missing)
    async def _missing(request: Request, exc: Missing) -> Response:
        t = exc.viewer.t
        return error_page(request, t, exc.viewer, 404, t.gettext(N_("Not found")),
                          t.gettext(N_("There is nothing at this address.")))
