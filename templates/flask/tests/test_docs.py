"""The OpenAPI document and Swagger UI, served without a CDN."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_openapi_describes_every_path(client: FlaskClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/health", "/ready", "/api/items", "/api/items/{item_id}"}
    items = document["paths"]["/api/items/{item_id}"]
    assert set(items) == {"get", "put", "patch", "delete"}
    assert items["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert "application/problem+json" in items["patch"]["responses"]["422"]["content"]
    assert "422" not in document["paths"]["/health"]["get"]["responses"]
    assert "securitySchemes" not in document["components"]
    schemas = set(document["components"]["schemas"])
    assert {"ItemCreate", "ItemOut", "ItemPage", "Problem"} <= schemas


def test_docs_page_and_its_assets_are_local(client: FlaskClient) -> None:
    page = client.get("/docs")

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "https://" not in html
    for asset in ("js/swagger-ui-bundle.js", "css/swagger-ui.css"):
        response = client.get(f"/docs/static/{asset}")
        assert response.status_code == 200, asset
        response.close()
