"""The OpenAPI document and the offline Swagger UI."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from openapi_spec_validator import validate
from webtest import TestApp


def test_openapi_document_is_valid_and_describes_every_path(client: TestApp) -> None:
    document = client.get("/openapi.json").json
    validate(document)
    assert set(document["paths"]) == {"/health", "/ready", "/api/items", "/api/items/{item_id}"}
    item_methods = set(document["paths"]["/api/items/{item_id}"]) - {"parameters"}
    assert item_methods == {"get", "put", "patch", "delete"}


def test_docs_serve_swagger_ui_from_the_package(client: TestApp) -> None:
    page = client.get("/docs")
    assert page.content_type == "text/html"
    assert "/docs/static/swagger-ui-bundle.js" in page.text
    assert "/openapi.json" in page.text
    assert "https://" not in page.text
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in script.text


def test_docs_page_is_titled_after_the_project(client: TestApp) -> None:
    title = client.get("/openapi.json").json["info"]["title"]
    assert f"<title>{html.escape(title)} - API docs</title>" in client.get("/docs").text


def test_root_redirects_to_the_docs(client: TestApp) -> None:
    response = client.get("/", status=302)
    assert urlsplit(response.headers["Location"]).path == "/docs"
