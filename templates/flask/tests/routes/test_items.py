"""The items resource over the test client: the contract's rules, one by one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

PROBLEM_JSON = "application/problem+json"


def create(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    """POST an item (name `widget`, quantity 1 unless given) and return it."""
    response = client.post("/api/items", json={"name": "widget", "quantity": 1, **fields})
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def field_errors(response: Any) -> dict[str, str]:
    """The 422 problem's errors as {field: message}."""
    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    return {error["field"]: error["message"] for error in response.get_json()["errors"]}


def test_create_returns_the_item_and_its_location(client: FlaskClient) -> None:
    response = client.post(
        "/api/items", json={"name": "  widget\t", "description": "blue", "quantity": 3}
    )

    assert response.status_code == 201
    item = response.get_json()
    assert response.headers["Location"] == f"/api/items/{item['id']}"
    assert item["name"] == "widget"
    assert item["description"] == "blue"
    assert item["quantity"] == 3
    created = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
    assert created.utcoffset() is not None
    assert created.utcoffset().total_seconds() == 0


def test_get_returns_the_stored_item(client: FlaskClient) -> None:
    item = create(client)

    response = client.get(f"/api/items/{item['id']}")

    assert response.status_code == 200
    assert response.get_json() == item


def test_list_pages_in_id_order(client: FlaskClient) -> None:
    ids = [create(client, name=f"item {n}")["id"] for n in range(5)]

    page = client.get("/api/items?limit=2&offset=1").get_json()

    assert [item["id"] for item in page["items"]] == ids[1:3]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)


def test_list_defaults(client: FlaskClient) -> None:
    assert client.get("/api/items").get_json() == {
        "items": [],
        "total": 0,
        "limit": 20,
        "offset": 0,
    }


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=",
        "limit=1.5",
        "offset=2.0",
        "offset=+2",
        "offset=-1",
        "offset=9223372036854775808",
    ],
)
def test_list_rejects_bad_paging(client: FlaskClient, query: str) -> None:
    response = client.get(f"/api/items?{query}")

    assert set(field_errors(response)) == {query.split("=")[0]}


def test_put_replaces_every_field(client: FlaskClient) -> None:
    item = create(client, description="old")

    response = client.put(f"/api/items/{item['id']}", json={"name": "gadget", "quantity": 7})

    assert response.status_code == 200
    replaced = response.get_json()
    assert (replaced["name"], replaced["description"], replaced["quantity"]) == ("gadget", None, 7)
    assert replaced["created_at"] == item["created_at"]


def test_put_requires_name_and_quantity(client: FlaskClient) -> None:
    item = create(client)

    response = client.put(f"/api/items/{item['id']}", json={"description": "x"})

    assert field_errors(response) == {"name": "field required", "quantity": "field required"}


def test_patch_changes_only_the_fields_sent(client: FlaskClient) -> None:
    item = create(client, description="keep")

    patched = client.patch(f"/api/items/{item['id']}", json={"quantity": 9}).get_json()

    assert (patched["name"], patched["description"], patched["quantity"]) == ("widget", "keep", 9)


def test_empty_patch_touches_updated_at(client: FlaskClient) -> None:
    item = create(client)

    response = client.patch(f"/api/items/{item['id']}", json={})

    assert response.status_code == 200
    assert response.get_json()["updated_at"] >= item["updated_at"]


@pytest.mark.parametrize("field", ["name", "quantity"])
def test_patch_refuses_null(client: FlaskClient, field: str) -> None:
    item = create(client)

    response = client.patch(f"/api/items/{item['id']}", json={field: None})

    assert field_errors(response) == {field: "must not be null"}


def test_delete_then_get_is_404(client: FlaskClient) -> None:
    item = create(client)

    response = client.delete(f"/api/items/{item['id']}")

    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"/api/items/{item['id']}").status_code == 404
    assert client.delete(f"/api/items/{item['id']}").status_code == 404


def test_duplicate_name_is_409(client: FlaskClient) -> None:
    create(client, name="widget")
    other = create(client, name="gadget")

    created = client.post("/api/items", json={"name": " widget ", "quantity": 1})
    renamed = client.patch(f"/api/items/{other['id']}", json={"name": "widget"})

    for response in (created, renamed):
        assert response.status_code == 409
        assert response.mimetype == PROBLEM_JSON
        assert response.get_json()["title"] == "Conflict"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "x", "quantity": True}, "quantity", None),
        ({"name": "x", "quantity": 1.0}, "quantity", None),
        ({"name": "x", "quantity": -1}, "quantity", None),
        ({"name": "x", "quantity": 1_000_001}, "quantity", None),
        ({"name": " \t ", "quantity": 1}, "name", None),
        ({"name": "x" * 201, "quantity": 1}, "name", None),
        ({"name": "a\x00b", "quantity": 1}, "name", None),
        ({"name": "x", "quantity": 1, "description": "d" * 2001}, "description", None),
        ({"name": "x", "quantity": 1, "colour": "red"}, "colour", "unknown field"),
        ({"name": "x", "quantity": 1, "id": 5}, "id", "read-only field"),
        ({"name": "x", "quantity": 1, "created_at": "2026-01-01T00:00:00Z"}, "created_at", None),
    ],
)
def test_create_rejects_invalid_fields(
    client: FlaskClient, body: dict[str, Any], field: str, message: str | None
) -> None:
    response = client.post("/api/items", json=body)

    errors = field_errors(response)
    assert set(errors) == {field}
    assert response.get_json()["detail"] == "1 field is invalid"
    if message is not None:
        assert errors[field] == message


def test_each_bad_field_is_reported(client: FlaskClient) -> None:
    response = client.post("/api/items", json={"quantity": "many", "extra": 1})

    assert set(field_errors(response)) == {"name", "quantity", "extra"}
    assert response.get_json()["detail"] == "3 fields are invalid"


@pytest.mark.parametrize("item_id", ["0", "-1", "abc", "2147483648", "1.5", "99999999999999999999"])
def test_ids_that_are_not_valid_are_unknown(client: FlaskClient, item_id: str) -> None:
    response = client.get(f"/api/items/{item_id}")

    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON


@pytest.mark.parametrize("item_id", ["2147483647", "0", "2147483648", "9" * 30])
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_unknown_item_is_404_for_every_method(
    client: FlaskClient, method: str, item_id: str
) -> None:
    response = getattr(client, method)(f"/api/items/{item_id}", json={"name": "x", "quantity": 1})

    assert response.status_code == 404
    assert response.get_json()["status"] == 404
