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


def test_operations_and_schemas_have_the_names_clients_use(client: TestApp) -> None:
    document = client.get("/openapi.json").json
    assert document["openapi"] == "3.1.0"
    operations = [
        operation
        for path in document["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict)
    ]
    assert {operation["operationId"] for operation in operations} == {
        "health",
        "ready",
        "list_items",
        "create_item",
        "get_item",
        "replace_item",
        "update_item",
        "delete_item",
    }
    assert all("default" in operation["responses"] for operation in operations)
    assert set(document["components"]["schemas"]) == {
        "FieldError",
        "Health",
        "ItemCreate",
        "ItemOut",
        "ItemPage",
        "ItemPatch",
        "ItemReplace",
        "Problem",
        "Readiness",
    }


def test_the_proposed_request_body_creates_an_item(client: TestApp) -> None:
    document = client.get("/openapi.json").json
    body = document["paths"]["/api/items"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["example"]) >= {"name", "quantity"}
    assert client.post_json("/api/items", body["example"]).status_int == 201


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
