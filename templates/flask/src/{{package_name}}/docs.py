"""The OpenAPI document at /openapi.json and Swagger UI at /docs, served without a CDN."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import flask_openapi3_swagger
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    render_template_string,
    send_from_directory,
)
from flask_openapi3 import OpenAPI

from .problems import PROBLEM_JSON

# Swagger UI 5 (it renders OpenAPI 3.1), as installed with flask-openapi3's own UI package.
SWAGGER_UI = Path(flask_openapi3_swagger.__file__).parent / "templates" / "swagger"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{ title }} - API docs</title>
  <link rel="icon" href="{{ url_for('docs.asset', filename='images/swagger.svg') }}">
  <link rel="stylesheet" href="{{ url_for('docs.asset', filename='css/swagger-ui.css') }}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{{ url_for('docs.asset', filename='js/swagger-ui-bundle.js') }}"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "{{ url_for('docs.openapi') }}", dom_id: "#swagger-ui"});
  </script>
</body>
</html>
"""

bp = Blueprint("docs", __name__)


def document(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI document, as flask-openapi3 builds it from the routes, tidied."""
    spec = cast(OpenAPI, app).api_doc
    components = spec.setdefault("components", {})
    # No security schemes: an empty (or null) entry only adds a useless "Authorize" button.
    if not components.get("securitySchemes"):
        components.pop("securitySchemes", None)
    for path_item in spec["paths"].values():
        for operation in path_item.values():
            # flask-openapi3 adds a plain-JSON 422 to operations that do not declare one;
            # the operations that can answer 422 declare it as problem+json themselves.
            responses = operation.get("responses", {})
            if "422" in responses and PROBLEM_JSON not in responses["422"].get("content", {}):
                del responses["422"]
    return spec


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    return document(current_app)


@bp.get("/docs")
def docs() -> str:
    """Swagger UI for the document."""
    return render_template_string(PAGE, title=cast(OpenAPI, current_app).info.title)


@bp.get("/docs/static/<path:filename>")
def asset(filename: str) -> Response:
    """Swagger UI's scripts, styles and icon, from the installed package."""
    return send_from_directory(SWAGGER_UI, filename)
