"""Small assertions shared by the tests."""

from __future__ import annotations

from typing import Any

import httpx2


def assert_problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["title"]
    return body


def fields(response: httpx2.Response) -> dict[str, str]:
    """The `errors` of a 422 problem, as {field: message}."""
    body = assert_problem(response, 422)
    return {error["field"]: error["message"] for error in body["errors"]}
