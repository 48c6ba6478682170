"""The /api/items endpoints, in-process."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ..helpers import assert_problem, fields

ITEM = {"name": "Widget", "description": "A useful widget", "quantity": 3}


def create(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/items", json={**ITEM, **overrides})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_returns_the_item_and_its_location(client: TestClient) -> None:
    response = client.post("/api/items", json=ITEM)
    assert response.status_code == 201
    item = response.json()
    assert response.headers["location"] == f"/api/items/{item['id']}"
    assert {key: item[key] for key in ITEM} == ITEM
    for stamp in ("created_at", "updated_at"):
        assert datetime.fromisoformat(item[stamp]).utcoffset() is not None
        assert item[stamp].endswith(("Z", "+00:00"))


def test_name_is_stripped_and_description_defaults_to_null(client: TestClient) -> None:
    item = create(client, name="  Spaced  ", description=None)
    assert item["name"] == "Spaced"
    assert item["description"] is None
    assert create(client, name="x" * 200)["name"] == "x" * 200
    assert create(client, name=" " + "y" * 200 + " ")["name"] == "y" * 200


def test_list_is_paginated_in_id_order(client: TestClient) -> None:
    ids = [create(client, name=f"item {n}")["id"] for n in range(5)]
    page = client.get("/api/items", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 5
    assert (page["limit"], page["offset"]) == (2, 1)
    assert [item["id"] for item in page["items"]] == ids[1:3]
    assert client.get("/api/items").json()["limit"] == 20


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "1.5"}, "offset"),
        ({"offset": "2.0"}, "offset"),
        ({"limit": "1e1"}, "limit"),
    ],
)
def test_bad_query_parameters_are_422(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    assert field in fields(client.get("/api/items", params=params))


def test_get_put_patch_delete(client: TestClient) -> None:
    item = create(client)
    url = f"/api/items/{item['id']}"
    assert client.get(url).json() == item

    replaced = client.put(url, json={"name": "Gadget", "quantity": 7}).json()
    assert (replaced["name"], replaced["quantity"], replaced["description"]) == ("Gadget", 7, None)
    assert replaced["created_at"] == item["created_at"]

    patched = client.patch(url, json={"description": "New"}).json()
    assert (patched["name"], patched["description"]) == ("Gadget", "New")
    assert client.patch(url, json={}).status_code == 200

    response = client.delete(url)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(client.get(url), 404)


@pytest.mark.parametrize("item_id", ["999", "0", "-1", "abc", "1.5", "99999999999999999999"])
def test_unknown_or_malformed_ids_are_404(client: TestClient, item_id: str) -> None:
    assert_problem(client.get(f"/api/items/{item_id}"), 404)
    assert_problem(client.patch(f"/api/items/{item_id}", json={"quantity": 1}), 404)
    assert_problem(client.delete(f"/api/items/{item_id}"), 404)


def test_put_requires_every_writable_field(client: TestClient) -> None:
    item = create(client)
    response = client.put(f"/api/items/{item['id']}", json={"name": "Only a name"})
    assert fields(response) == {"quantity": "field required"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"quantity": 1}, {"name": "field required"}),
        ({"name": "   ", "quantity": 1}, {"name": "must not be blank"}),
        ({"name": "x" * 201, "quantity": 1}, {"name": "must be at most 200 characters"}),
        ({"name": "a\x00b", "quantity": 1}, {"name": "must not contain NUL characters"}),
        ({"name": "a", "quantity": True}, {"quantity": "must be an integer between 0 and 1000000"}),
        ({"name": "a", "quantity": 1.0}, {"quantity": "must be an integer between 0 and 1000000"}),
        (
            {"name": "a", "quantity": 1_000_001},
            {"quantity": "must be an integer between 0 and 1000000"},
        ),
        ({"name": "a", "quantity": -1}, {"quantity": "must be an integer between 0 and 1000000"}),
        (
            {"name": "a", "quantity": 1, "description": "d" * 2001},
            {"description": "String should have at most 2000 characters"},
        ),
        ({"name": "a", "quantity": 1, "colour": "red"}, {"colour": "unknown field"}),
        ({"name": "a", "quantity": 1, "id": 5}, {"id": "read-only field"}),
        (
            {"name": "a", "quantity": 1, "created_at": "2026-01-01T00:00:00Z"},
            {"created_at": "read-only field"},
        ),
    ],
)
def test_invalid_fields_are_422_one_entry_per_field(
    client: TestClient, body: dict[str, Any], expected: dict[str, str]
) -> None:
    response = client.post("/api/items", json=body)
    assert fields(response) == expected
    assert response.json()["detail"] == "1 field is invalid"
    assert client.get("/api/items").json()["total"] == 0


def test_several_invalid_fields_are_all_reported(client: TestClient) -> None:
    response = client.post("/api/items", json={"name": "", "quantity": "3", "extra": 1})
    assert set(fields(response)) == {"name", "quantity", "extra"}
    assert response.json()["detail"] == "3 fields are invalid"


@pytest.mark.parametrize("field", ["name", "quantity"])
def test_patch_refuses_null_for_required_fields(client: TestClient, field: str) -> None:
    item = create(client)
    response = client.patch(f"/api/items/{item['id']}", json={field: None})
    assert fields(response) == {field: "must not be null"}


def test_duplicate_names_are_409(client: TestClient) -> None:
    first = create(client, name="Unique")
    body = assert_problem(client.post("/api/items", json={**ITEM, "name": " Unique "}), 409)
    assert "Unique" in body["detail"]
    other = create(client, name="Other")
    assert_problem(client.patch(f"/api/items/{other['id']}", json={"name": "Unique"}), 409)
    assert_problem(
        client.put(f"/api/items/{other['id']}", json={"name": "Unique", "quantity": 1}), 409
    )
    assert client.get(f"/api/items/{first['id']}").json() == first
    assert client.get("/api/items").json()["total"] == 2


def test_bodies_must_be_json_objects(client: TestClient) -> None:
    assert_problem(
        client.post(
            "/api/items", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
    )
    assert_problem(client.post("/api/items", json=[ITEM]), 400)
    assert_problem(client.post("/api/items", json="text"), 400)


# Bodies the shared reader (problems.parse_json_object) refuses, with the reason.
UNREADABLE = [
    (b"[" * 100_000 + b"]" * 100_000, "the request body is nested too deeply"),
    ('{"name": "caf\u00e9", "quantity": 1}'.encode("utf-16"), "the request body is not UTF-8"),
    (b'{"name": "x", "quantity": NaN}', "the request body is not valid JSON"),
    (
        b'{"name": "x", "quantity": 1, "k\\ud800": 1}',
        "a member name in the request body is not Unicode text",
    ),
]
# Bodies it reads whose fields are invalid (JSON escapes: no client encodes a lone surrogate).
QUANTITY = "must be an integer between 0 and 1000000"
SURROGATE = "must not contain unpaired surrogates"
HOSTILE_FIELDS = [
    (b'{"name": "x", "quantity": ' + b"9" * 5000 + b"}", "quantity", QUANTITY),
    (b'{"name": "x\\ud800", "quantity": 1}', "name", SURROGATE),
    (b'{"name": "x", "description": "\\udfff", "quantity": 1}', "description", SURROGATE),
]


@pytest.mark.parametrize(("body", "detail"), UNREADABLE)
def test_unreadable_bodies_are_400_with_the_reason(
    client: TestClient, body: bytes, detail: str
) -> None:
    response = client.post("/api/items", content=body, headers={"content-type": "application/json"})
    assert assert_problem(response, 400)["detail"] == detail


@pytest.mark.parametrize(("body", "field", "message"), HOSTILE_FIELDS)
def test_huge_numbers_and_unpaired_surrogates_are_field_errors(
    client: TestClient, body: bytes, field: str, message: str
) -> None:
    response = client.post("/api/items", content=body, headers={"content-type": "application/json"})
    assert fields(response) == {field: message}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_bodies_must_be_sent_as_json(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/api/items", content=b'{"name": "a", "quantity": 1}', headers=headers)
    assert_problem(response, 415)
