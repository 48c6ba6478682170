"""Liveness and readiness."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from rest_framework.test import APIClient


def test_health(client: APIClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready(client: APIClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_ready_without_a_database_is_503(
    client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: BaseDatabaseWrapper, *args: object) -> None:
        raise OperationalError("connection to server at 10.0.0.1 failed: password=hunter2")

    with monkeypatch.context() as patch:
        patch.setattr(BaseDatabaseWrapper, "cursor", refuse)
        response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "OperationalError"}}
    assert b"hunter2" not in response.content


def test_items_without_a_database_are_503(
    client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: BaseDatabaseWrapper, *args: object) -> None:
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(BaseDatabaseWrapper, "cursor", refuse)
        response = client.get("/api/items")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Service Unavailable"
