"""Small assertions shared by the tests."""

from __future__ import annotations

from typing import Any

from webtest import TestApp, TestResponse

PROBLEM_JSON = "application/problem+json"


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_int == status, response.text
    assert response.headers["Content-Type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["title"]
    return body


def field_errors(response: TestResponse) -> dict[str, str]:
    """The 422 problem's errors as {field: message}."""
    body = assert_problem(response, 422)
    return {error["field"]: error["message"] for error in body["errors"]}


def create(client: TestApp, **fields: Any) -> dict[str, Any]:
    """POST an item (name `widget`, quantity 1 unless given) and return it."""
    response = client.post_json("/api/items", {"name": "widget", "quantity": 1, **fields})
    assert response.status_int == 201
    body: dict[str, Any] = response.json
    return body
