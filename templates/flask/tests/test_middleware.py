"""Request ids, the nosniff header and the one access-log line per request."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/health"), ("GET", "/api/items/0"), ("POST", "/api/items"), ("GET", "/nowhere")],
)
def test_request_id_is_echoed(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, headers={"X-Request-ID": "abc-123"})

    assert response.headers["X-Request-ID"] == "abc-123"


@pytest.mark.parametrize("sent", [None, "", "x" * 129, "has space", "caf\u00e9"])
def test_request_id_is_made_when_missing_or_unusable(client: FlaskClient, sent: str | None) -> None:
    headers = {"X-Request-ID": sent} if sent is not None else {}

    response = client.get("/nowhere", headers=headers)

    assert response.headers["X-Request-ID"]
    assert response.headers["X-Request-ID"] != sent


def test_every_response_has_nosniff(client: FlaskClient) -> None:
    for path in ("/health", "/nowhere", "/docs"):
        assert client.get(path).headers["X-Content-Type-Options"] == "nosniff"


def test_one_access_log_line_per_request(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        client.get("/api/items?limit=5", headers={"X-Request-ID": "req-1"})

    lines = [record for record in caplog.records if record.name.endswith(".access")]
    assert len(lines) == 1
    record = lines[0]
    assert (record.method, record.path, record.status) == ("GET", "/api/items", 200)  # type: ignore[attr-defined]
    assert record.request_id == "req-1"  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]
