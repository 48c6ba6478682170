"""The items endpoints: CRUD, pagination and the contract's validation rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from rest_framework.test import APIClient

PROBLEM_JSON = "application/problem+json"


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    return body


def _fields(body: dict[str, Any]) -> dict[str, str]:
    return {error["field"]: error["message"] for error in body["errors"]}


def test_create_returns_the_item_and_its_location(client: APIClient) -> None:
    response = client.post(
        "/api/items", {"name": "bolt", "description": "M6", "quantity": 10}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert response["Location"] == f"/api/items/{body['id']}"
    assert body["name"] == "bolt"
    assert body["description"] == "M6"
    assert body["quantity"] == 10
    for stamp in ("created_at", "updated_at"):
        assert body[stamp].endswith(("Z", "+00:00"))
        assert datetime.fromisoformat(body[stamp]).utcoffset() is not None


def test_description_defaults_to_null(item: dict[str, Any]) -> None:
    assert item["description"] is None


def test_name_is_stripped_of_ascii_whitespace_only(client: APIClient) -> None:
    body = {"name": " \t\n\r\f\vnut\u00a0 ", "quantity": 1}
    response = client.post("/api/items", body, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "nut\u00a0"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"quantity": 1}, "name", "field required"),
        ({"name": " \t ", "quantity": 1}, "name", "must not be blank"),
        ({"name": "x" * 201, "quantity": 1}, "name", "must be at most 200 characters"),
        ({"name": "a\x00b", "quantity": 1}, "name", "must not contain NUL characters"),
        ({"name": 5, "quantity": 1}, "name", "must be a string"),
        ({"name": "a", "quantity": 1, "description": "d\x00"}, "description", None),
        ({"name": "a", "quantity": 1, "description": "d" * 2001}, "description", None),
        ({"name": "a"}, "quantity", "field required"),
        ({"name": "a", "quantity": -1}, "quantity", "must be an integer between 0 and 1000000"),
        ({"name": "a", "quantity": 1_000_001}, "quantity", None),
        ({"name": "a", "quantity": True}, "quantity", None),
        ({"name": "a", "quantity": 1.0}, "quantity", None),
        ({"name": "a", "quantity": "1"}, "quantity", None),
        ({"name": "a", "quantity": 1, "colour": "red"}, "colour", "unknown field"),
        ({"name": "a", "quantity": 1, "id": 7}, "id", "read-only field"),
        ({"name": "a", "quantity": 1, "created_at": "x"}, "created_at", "read-only field"),
    ],
)
def test_invalid_fields_are_422(
    client: APIClient, body: dict[str, Any], field: str, message: str | None
) -> None:
    problem = _problem(client.post("/api/items", body, format="json"), 422)
    assert problem["title"] == "Unprocessable Content"
    assert problem["detail"] == "1 field is invalid"
    errors = _fields(problem)
    assert list(errors) == [field]
    if message:
        assert errors[field] == message


def test_every_bad_field_is_listed(client: APIClient) -> None:
    body = {"name": "", "quantity": "many", "extra": 1}
    problem = _problem(client.post("/api/items", body, format="json"), 422)
    assert problem["detail"] == "3 fields are invalid"
    assert set(_fields(problem)) == {"name", "quantity", "extra"}


def test_duplicate_name_is_409(client: APIClient, item: dict[str, Any]) -> None:
    response = client.post("/api/items", {"name": " widget ", "quantity": 1}, format="json")
    assert _problem(response, 409)["title"] == "Conflict"


def test_renaming_onto_an_existing_name_is_409(client: APIClient, item: dict[str, Any]) -> None:
    other = client.post("/api/items", {"name": "gadget", "quantity": 1}, format="json").json()
    response = client.patch(f"/api/items/{other['id']}", {"name": "widget"}, format="json")
    _problem(response, 409)


def test_get_put_patch_delete(client: APIClient, item: dict[str, Any]) -> None:
    url = f"/api/items/{item['id']}"
    assert client.get(url).json() == item

    replaced = client.put(url, {"name": "widget 2", "quantity": 5}, format="json")
    assert replaced.status_code == 200
    assert replaced.json()["name"] == "widget 2"
    assert replaced.json()["description"] is None

    patched = client.patch(url, {"description": "blue"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["description"] == "blue"
    assert patched.json()["quantity"] == 5

    deleted = client.delete(url)
    assert deleted.status_code == 204
    assert deleted.content == b""
    _problem(client.get(url), 404)


def test_put_requires_name_and_quantity(client: APIClient, item: dict[str, Any]) -> None:
    response = client.put(f"/api/items/{item['id']}", {"description": "x"}, format="json")
    assert set(_fields(_problem(response, 422))) == {"name", "quantity"}


def test_empty_patch_touches_updated_at(client: APIClient, item: dict[str, Any]) -> None:
    response = client.patch(f"/api/items/{item['id']}", {}, format="json")
    assert response.status_code == 200
    assert response.json()["updated_at"] > item["updated_at"]
    assert response.json()["created_at"] == item["created_at"]


@pytest.mark.parametrize("field", ["name", "quantity"])
def test_patch_null_is_422(client: APIClient, item: dict[str, Any], field: str) -> None:
    response = client.patch(f"/api/items/{item['id']}", {field: None}, format="json")
    assert _fields(_problem(response, 422)) == {field: "must not be null"}


def test_patch_description_null(client: APIClient, item: dict[str, Any]) -> None:
    response = client.patch(f"/api/items/{item['id']}", {"description": None}, format="json")
    assert response.status_code == 200
    assert response.json()["description"] is None


def test_body_is_checked_before_the_item_is_looked_up(client: APIClient) -> None:
    _problem(client.put("/api/items/999", {"quantity": -1}, format="json"), 422)
    _problem(client.put("/api/items/999", {"name": "a", "quantity": 1}, format="json"), 404)


@pytest.mark.parametrize("item_id", ["0", "2147483648", "99999999999999999999", "-1", "abc", "1.5"])
def test_ids_outside_the_range_are_404(client: APIClient, item_id: str) -> None:
    _problem(client.get(f"/api/items/{item_id}"), 404)
    _problem(client.delete(f"/api/items/{item_id}"), 404)


def test_list_is_paginated_in_id_order(client: APIClient) -> None:
    ids = [
        client.post("/api/items", {"name": f"item {n}", "quantity": n}, format="json").json()["id"]
        for n in range(5)
    ]
    page = client.get("/api/items", {"limit": 2, "offset": 1}).json()
    assert page["total"] == 5
    assert page["limit"] == 2
    assert page["offset"] == 1
    assert [entry["id"] for entry in page["items"]] == ids[1:3]
    default = client.get("/api/items").json()
    assert (default["limit"], default["offset"]) == (20, 0)
    assert len(default["items"]) == 5


def test_offset_can_be_the_largest_bigint(client: APIClient, item: dict[str, Any]) -> None:
    page = client.get("/api/items", {"offset": 9_223_372_036_854_775_807}).json()
    assert page["items"] == []
    assert page["total"] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 9_223_372_036_854_775_808}, "offset"),
        ({"offset": ""}, "offset"),
    ],
)
def test_bad_query_parameters_are_422(client: APIClient, query: dict[str, Any], field: str) -> None:
    assert list(_fields(_problem(client.get("/api/items", query), 422))) == [field]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(client: APIClient, content_type: str | None) -> None:
    if content_type is None:
        response = client.generic("POST", "/api/items", b'{"name": "a", "quantity": 1}')
    else:
        body = b'{"name": "a", "quantity": 1}'
        response = client.generic("POST", "/api/items", body, content_type=content_type)
    _problem(response, 415)


def test_json_suffix_media_types_are_json(client: APIClient) -> None:
    body = b'{"name": "merge", "quantity": 1}'
    response = client.generic(
        "POST", "/api/items", body, content_type="application/merge-patch+json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body", [b"{", b"[1, 2]", b'"text"', b"", b"\xff\xfe", b"NaN", b"[" * 100_000 + b"]" * 100_000]
)
def test_malformed_or_non_object_json_is_400(client: APIClient, body: bytes) -> None:
    response = client.generic("POST", "/api/items", body, content_type="application/json")
    assert _problem(response, 400)["title"] == "Bad Request"


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
    client: APIClient, body: bytes, detail: str
) -> None:
    response = client.generic("POST", "/api/items", body, content_type="application/json")
    assert _problem(response, 400)["detail"] == detail


@pytest.mark.parametrize(("body", "field", "message"), HOSTILE_FIELDS)
def test_huge_numbers_and_unpaired_surrogates_are_field_errors(
    client: APIClient, body: bytes, field: str, message: str
) -> None:
    response = client.generic("POST", "/api/items", body, content_type="application/json")
    assert _fields(_problem(response, 422)) == {field: message}
