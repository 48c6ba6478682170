"""Fixtures: an API client and, for every test, an isolated database (pytest-django)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient


def pytest_configure(config: pytest.Config) -> None:
    """Tests run without `collectstatic`: WhiteNoise serves from the apps, as in development."""
    config.addinivalue_line("filterwarnings", "ignore:No directory at:UserWarning")


@pytest.fixture(autouse=True)
def _isolated_database(db: None) -> None:
    """Every test runs in a transaction that is rolled back afterwards (pytest-django)."""


@pytest.fixture
def client() -> APIClient:
    """A DRF test client that goes through the whole stack, middleware included."""
    return APIClient()


@pytest.fixture
def item(client: APIClient) -> dict[str, Any]:
    """One item created through the API."""
    response = client.post("/api/items", {"name": "widget", "quantity": 3}, format="json")
    assert response.status_code == 201, response.content
    data: dict[str, Any] = response.json()
    return data
