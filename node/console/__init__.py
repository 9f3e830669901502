"""The officers' web console, served by the node under ``/console/``.

Server-rendered pages (Jinja2 templates, a little vanilla JavaScript, one stylesheet;
nothing is fetched from elsewhere) over the same services the API uses. Modules:

- ``auth``: the session cookie, the signed-in ``Viewer`` and ``Require`` role rules;
- ``csrf``: the token every form carries;
- ``i18n``, ``labels``, ``templating``: French and English (gettext catalogs in
  ``locale/``), words for codes, rendering with security headers;
- ``forms``: HTML forms to the API's pydantic models and errors back to fields;
- ``pages``: navigation, redirects and error pages;
- ``routes/``: one module per area (session, alerts, records, peers, audit, users).

``install_console(app)`` adds it all to the node's app.
"""

from ._install import install_console

__all__ = ["install_console"]
