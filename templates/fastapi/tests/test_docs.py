"""The OpenAPI document and the interactive docs."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_openapi_describes_every_operation(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert operations >= {
        ("/health", "get"),
        ("/ready", "get"),
        ("/api/items", "get"),
        ("/api/items", "post"),
        ("/api/items/{item_id}", "get"),
        ("/api/items/{item_id}", "put"),
        ("/api/items/{item_id}", "patch"),
        ("/api/items/{item_id}", "delete"),
    }
    create = document["paths"]["/api/items"]["post"]
    assert "application/problem+json" in create["responses"]["422"]["content"]
    assert "Problem" in document["components"]["schemas"]


def test_docs_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "cdn." not in page.text
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
