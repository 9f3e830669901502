"""Rendering console pages: one Jinja2 environment, translated per request.

Templates call ``_()``, ``gettext()``, ``ngettext()`` and ``{% trans %}``
(``jinja2.ext.i18n``, new-style: ``_("%(n)s peers", n=3)``); those names are bound to
the request's ``Translator`` in each render's context, so concurrent requests in
different languages never share state. Every page is sent with a strict Content
Security Policy: scripts and styles come only from ``/console/static``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from ..web.security_headers import SECURITY_HEADERS
from .i18n import LANGUAGE_NAMES, LANGUAGES, Translator
from .labels import field_label, label

TEMPLATES_DIR = Path(__file__).parent / "templates"


def _gettext_for(translator: Translator) -> Callable[..., str]:
    @pass_context
    def gettext(__context: Context, __string: str, **variables: Any) -> str:
        text = translator.gettext(__string)
        if __context.eval_ctx.autoescape:
            # Our own catalog's text; the variables are escaped by Markup's %.
            text = Markup(text)  # noqa: S704
        return text % variables if variables else text

    return gettext


def _ngettext_for(translator: Translator) -> Callable[..., str]:
    @pass_context
    def ngettext(
        __context: Context, __singular: str, __plural: str, __num: int, **variables: Any
    ) -> str:
        variables.setdefault("num", __num)
        text = translator.ngettext(__singular, __plural, __num)
        if __context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704 (as in gettext above)
        return text % variables

    return ngettext


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(("html",)),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Added to the environment by jinja2.ext.i18n at run time; replaced per render.
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        label=label, field_label=field_label, LANGUAGES=LANGUAGES, LANGUAGE_NAMES=LANGUAGE_NAMES
    )
    return env


def render_text(translator: Translator, template: str, **context: Any) -> str:
    gettext = _gettext_for(translator)
    return (
        environment()
        .get_template(template)
        .render(
            _=gettext,
            gettext=gettext,
            ngettext=_ngettext_for(translator),
            t=translator,
            lang=translator.language,
            **context,
        )
    )


def render(
    request: Request,
    translator: Translator,
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    node = request.app.state.node
    html = render_text(
        translator,
        template,
        request=request,
        path=request.url.path,
        node_id=node.settings.node_id,
        node_name=node.settings.node_name,
        **context,
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={**SECURITY_HEADERS, "Content-Language": translator.language, **(headers or {})},
    )
