"""The OpenAPI document and Swagger UI, served from the swagger-ui-bundle package."""

from __future__ import annotations

import functools
import html
import string
from typing import Any

import bottle
from swagger_ui_bundle import swagger_ui_path

from ..openapi import build_openapi

ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
PAGE = string.Template("""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>$title</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});
  </script>
</body>
</html>
""")


def register(app: bottle.Bottle) -> None:
    """Add /openapi.json, /docs and the Swagger UI assets to ``app``."""
    app.route("/openapi.json", "GET", openapi)
    app.route("/docs", "GET", docs)
    app.route("/docs/<name>", "GET", asset)


@functools.cache
def _document() -> dict[str, Any]:
    return build_openapi()


def openapi() -> dict[str, Any]:
    """The OpenAPI document."""
    return _document()


def docs() -> str:
    """Swagger UI, which works offline."""
    return PAGE.substitute(title=html.escape(_document()["info"]["title"]))


def asset(name: str) -> bottle.HTTPResponse:
    """A Swagger UI file, cached by the browser for a day."""
    if name not in ASSETS:
        raise bottle.HTTPError(404)
    headers = {"Cache-Control": "max-age=86400"}
    return bottle.static_file(name, root=swagger_ui_path, headers=headers)
