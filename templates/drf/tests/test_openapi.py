"""The OpenAPI document, the offline docs and the committed migrations."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient


@pytest.fixture
def document(client: APIClient) -> dict[str, Any]:
    """The served OpenAPI document."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    data: dict[str, Any] = response.json()
    return data


def test_every_path_is_described(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths["/api/items"]) == {"get", "post"}
    assert set(paths["/api/items/{item_id}"]) == {"get", "put", "patch", "delete"}
    assert {"/health", "/ready"} <= set(paths)


def test_request_bodies_are_closed_and_match_the_rules(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    create = schemas["ItemRequest"]
    assert create["additionalProperties"] is False
    assert set(create["required"]) == {"name", "quantity"}
    assert set(create["properties"]) == {"name", "description", "quantity"}
    name = re.compile(create["properties"]["name"]["pattern"])
    for valid in ("a", "  padded  ", " " + "x" * 200 + " "):
        assert name.search(valid), valid
    for invalid in ("", "   ", "x" * 201, "a\x00b"):
        assert not name.search(invalid), invalid
    quantity = create["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (0, 1_000_000)
    assert "required" not in schemas["PatchedItemRequest"]


def test_errors_are_described_as_problems(document: dict[str, Any]) -> None:
    responses = document["paths"]["/api/items"]["post"]["responses"]
    for status in ("400", "409", "413", "415", "422"):
        assert "application/problem+json" in responses[status]["content"]


def test_docs_are_served_without_a_cdn(client: APIClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn" not in html.lower()


def test_migrations_match_the_models() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
