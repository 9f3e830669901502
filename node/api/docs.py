"""``/docs``: Swagger UI over ``/openapi.json``, served by the node itself.

FastAPI's own page loads Swagger UI from a CDN, with no Content-Security-Policy: a
browser that opens it runs third-party script with the user's session at hand. Here
the assets come from the ``swagger-ui-bundle-v2`` package (Apache-2.0, the Swagger UI
distribution), only the few files the page uses, and the page has the console's
security headers (``node.web.security_headers``). ``/redoc`` is not offered.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from ..web.security_headers import SECURITY_HEADERS

OWN = Path(__file__).parent / "static"
ASSETS = {
    "swagger-ui-bundle.js": Path(str(swagger_ui_path)) / "swagger-ui-bundle.js",
    "swagger-ui.css": Path(str(swagger_ui_path)) / "swagger-ui.css",
    "favicon-32x32.png": Path(str(swagger_ui_path)) / "favicon-32x32.png",
    "docs.js": OWN / "docs.js",
}
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} – API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs_page() -> HTMLResponse:
    return HTMLResponse(PAGE.format(title="kpnet node"), headers=SECURITY_HEADERS)


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> Response:
    path = ASSETS.get(name)
    if path is None:
        return Response(status_code=404)
    return Response(
        path.read_bytes(),
        media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
