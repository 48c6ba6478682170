"""Errors from the framework and from the app are all problem documents."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from .helpers import assert_problem


def test_unknown_path_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/no/such/path"), 404)


def test_wrong_method_is_405_with_allow(client: TestClient) -> None:
    response = client.delete("/api/items")
    assert_problem(response, 405)
    allowed = set(response.headers["allow"].replace(" ", "").split(","))
    assert {"GET", "POST"} <= allowed
    assert "DELETE" not in allowed


def test_body_over_one_mebibyte_is_413(client: TestClient) -> None:
    body = b'{"name": "big", "quantity": 1, "description": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post("/api/items", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 413)


def test_unhandled_error_is_a_500_problem_without_internals(
    app: FastAPI, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals at /srv/app.py")

    with caplog.at_level(logging.ERROR):
        response = client.get("/boom")
    assert_problem(response, 500)
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "secret internals" in caplog.text
