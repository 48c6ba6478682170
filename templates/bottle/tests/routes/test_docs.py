"""The OpenAPI document and the offline Swagger UI."""

from __future__ import annotations

from webtest import TestApp


def test_openapi_describes_every_endpoint(client: TestApp) -> None:
    document = client.get("/openapi.json").json

    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {"/health", "/ready", "/api/items", "/api/items/{item_id}"}
    assert set(document["paths"]["/api/items/{item_id}"]) >= {"get", "put", "patch", "delete"}
    assert "ItemCreate" in document["components"]["schemas"]


def test_docs_page_loads_swagger_ui_from_this_server(client: TestApp) -> None:
    page = client.get("/docs")

    assert page.content_type == "text/html"
    assert "/openapi.json" in page.text
    assert "https://" not in page.text
    for asset in ("/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js"):
        assert asset in page.text
        assert client.get(asset).status_int == 200


def test_only_the_swagger_ui_files_are_served(client: TestApp) -> None:
    response = client.get("/docs/index.html", status=404)

    assert response.content_type == "application/problem+json"
