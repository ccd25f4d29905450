"""Swagger UI (``/docs``) and ReDoc (``/redoc``) served by the service itself.

FastAPI's own pages load both from a CDN and start Swagger UI with an inline script, so they are
blank without internet and need a loose Content-Security-Policy. Here the scripts and styles come
from the ``fastapi-offline`` package (which ships the built files) under ``/docs-assets``, and
Swagger UI is started by a small script of ours, so the pages run under the same strict CSP as
the rest of the service (``script-src 'self'``). Create the app with ``docs_url=None,
redoc_url=None`` and add :func:`docs_routes`.
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PATH = "/docs-assets"
_CACHE = {"Cache-Control": "public, max-age=86400"}

# Reads the document's URL from the page (no inline script, no string evaluation).
_SWAGGER_INIT_JS = """\
(function () {
  "use strict";
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
"""

_SWAGGER_HTML = """\
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - Swagger UI</title>
  <link rel="icon" href="{assets}/favicon.png">
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""

_REDOC_HTML = """\
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - ReDoc</title>
  <link rel="icon" href="{assets}/favicon.png">
</head>
<body>
  <redoc spec-url="{openapi_url}"></redoc>
  <script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


def docs_routes(title: str, openapi_url: str = "/openapi.json") -> list[BaseRoute]:
    """``/docs``, ``/redoc`` and their assets, for an app whose document is at ``openapi_url``."""
    fields = {
        "title": html.escape(title),
        "openapi_url": html.escape(openapi_url, quote=True),
        "assets": ASSETS_PATH,
    }
    swagger_page = _SWAGGER_HTML.format(**fields)
    redoc_page = _REDOC_HTML.format(**fields)

    async def swagger_ui(_: Request) -> Response:
        return HTMLResponse(swagger_page)

    async def redoc(_: Request) -> Response:
        return HTMLResponse(redoc_page)

    async def swagger_init(_: Request) -> Response:
        return Response(_SWAGGER_INIT_JS, media_type="text/javascript", headers=_CACHE)

    return [
        Route("/docs", swagger_ui, include_in_schema=False),
        Route("/redoc", redoc, include_in_schema=False),
        Route(f"{ASSETS_PATH}/swagger-init.js", swagger_init, include_in_schema=False),
        Mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets"),
    ]
