"""``/docs`` loads nothing from elsewhere and has the console's security headers."""

from __future__ import annotations

import re
from typing import Any

from node.web.security_headers import SECURITY_HEADERS


def test_docs_page_loads_only_the_nodes_own_assets_under_the_console_csp(shared_api: Any) -> None:
    page = shared_api.client.get("/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert csp == SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    for source in sources:
        asset = shared_api.client.get(source)
        assert asset.status_code == 200, source
        assert asset.content
    script = shared_api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    init = shared_api.client.get("/docs/assets/docs.js").text
    assert '"/openapi.json"' in init


def test_docs_assets_are_an_allow_list_and_redoc_is_gone(shared_api: Any) -> None:
    assert shared_api.client.get("/docs/assets/..%2Fpyproject.toml").status_code == 404
    assert shared_api.client.get("/docs/assets/swagger-ui.js.map").status_code == 404
    assert shared_api.client.get("/redoc").status_code == 404
