"""The items resource, end to end through Pyramid, pyramid_tm and the database."""

from __future__ import annotations

from typing import Any

import pytest
from webtest import TestApp

PROBLEM_JSON = "application/problem+json"


def test_create_returns_the_item_and_its_location(client: TestApp) -> None:
    response = client.post_json(
        "/api/items", {"name": "  Widget \t", "description": "blue", "quantity": 3}, status=201
    )
    item = response.json
    assert item["name"] == "Widget"
    assert item["description"] == "blue"
    assert item["quantity"] == 3
    assert response.headers["Location"] == f"/api/items/{item['id']}"
    assert item["created_at"].endswith("Z")
    assert item["created_at"] == item["updated_at"]


def test_name_length_counts_after_stripping(client: TestApp) -> None:
    name = "n" * 200
    created = client.post_json("/api/items", {"name": f"  {name}\t", "quantity": 1}).json
    assert created["name"] == name


def test_get_list_and_pagination(client: TestApp) -> None:
    ids = [
        client.post_json("/api/items", {"name": f"n{i}", "quantity": i}).json["id"]
        for i in range(3)
    ]
    page = client.get("/api/items", {"limit": 2, "offset": 1}).json
    assert page["total"] == 3
    assert (page["limit"], page["offset"]) == (2, 1)
    assert [item["id"] for item in page["items"]] == ids[1:]
    assert client.get(f"/api/items/{ids[0]}").json["name"] == "n0"
    assert client.get("/api/items").json["limit"] == 20


def test_put_replaces_and_patch_changes_only_what_is_sent(
    client: TestApp, item: dict[str, Any]
) -> None:
    url = f"/api/items/{item['id']}"
    replaced = client.put_json(url, {"name": "Gadget", "quantity": 7}).json
    assert (replaced["name"], replaced["quantity"], replaced["description"]) == ("Gadget", 7, None)
    patched = client.patch_json(url, {"description": "small"}).json
    assert (patched["name"], patched["description"]) == ("Gadget", "small")
    touched = client.patch_json(url, {}).json
    assert touched["updated_at"] >= patched["updated_at"]
    assert touched["description"] == "small"


def test_delete_then_get_is_404(client: TestApp, item: dict[str, Any]) -> None:
    url = f"/api/items/{item['id']}"
    response = client.delete(url, status=204)
    assert response.body == b""
    assert "Content-Type" not in response.headers
    missing = client.get(url, status=404)
    assert missing.content_type == PROBLEM_JSON
    client.delete(url, status=404)


@pytest.mark.parametrize("item_id", ["0", "-1", "abc", "2147483648", "1.5"])
def test_an_id_that_is_not_a_positive_integer_is_404(client: TestApp, item_id: str) -> None:
    response = client.get(f"/api/items/{item_id}", status=404)
    assert response.json["status"] == 404


def test_duplicate_name_is_409_and_the_transaction_is_rolled_back(
    client: TestApp, item: dict[str, Any]
) -> None:
    response = client.post_json("/api/items", {"name": "Widget", "quantity": 1}, status=409)
    assert response.content_type == PROBLEM_JSON
    assert response.json["title"] == "Conflict"
    other = client.post_json("/api/items", {"name": "Other", "quantity": 1}).json
    client.patch_json(f"/api/items/{other['id']}", {"name": "Widget"}, status=409)
    assert client.get("/api/items").json["total"] == 2


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"quantity": 1}, "name", "field required"),
        ({"name": "   ", "quantity": 1}, "name", "must not be blank"),
        ({"name": "x" * 201, "quantity": 1}, "name", "must be at most 200 characters"),
        ({"name": "a\x00b", "quantity": 1}, "name", "must not contain NUL characters"),
        ({"name": "a", "quantity": True}, "quantity", "must be an integer between 0 and 1000000"),
        ({"name": "a", "quantity": 1.5}, "quantity", "must be an integer between 0 and 1000000"),
        ({"name": "a", "quantity": -1}, "quantity", "must be an integer between 0 and 1000000"),
        ({"name": "a", "quantity": 1, "colour": "red"}, "colour", "unknown field"),
        ({"name": "a", "quantity": 1, "id": 5}, "id", "read-only field"),
        ({"name": "a", "quantity": 1, "description": "d" * 2001}, "description", None),
    ],
)
def test_invalid_fields_are_422_with_one_entry_per_field(
    client: TestApp, body: dict[str, Any], field: str, message: str | None
) -> None:
    response = client.post_json("/api/items", body, status=422)
    problem = response.json
    assert response.content_type == PROBLEM_JSON
    assert problem["title"] == "Unprocessable Content"
    assert problem["detail"] == "1 field is invalid"
    assert [error["field"] for error in problem["errors"]] == [field]
    if message is not None:
        assert problem["errors"][0]["message"].startswith(message)


def test_a_float_quantity_with_an_integral_value_is_not_an_integer(client: TestApp) -> None:
    problem = client.post_json("/api/items", {"name": "a", "quantity": 1.0}, status=422).json
    assert [error["field"] for error in problem["errors"]] == ["quantity"]


def test_several_bad_fields_are_all_listed(client: TestApp) -> None:
    body = {"name": "", "quantity": "many", "created_at": "now", "extra": 1}
    problem = client.post_json("/api/items", body, status=422).json
    assert problem["detail"] == "4 fields are invalid"
    fields = {error["field"]: error["message"] for error in problem["errors"]}
    assert fields["created_at"] == "read-only field"
    assert fields["extra"] == "unknown field"
    assert set(fields) == {"name", "quantity", "created_at", "extra"}


def test_put_requires_every_writable_field(client: TestApp, item: dict[str, Any]) -> None:
    problem = client.put_json(f"/api/items/{item['id']}", {"name": "x"}, status=422).json
    assert problem["errors"] == [{"field": "quantity", "message": "field required"}]


def test_patch_refuses_null_for_required_fields(client: TestApp, item: dict[str, Any]) -> None:
    url = f"/api/items/{item['id']}"
    problem = client.patch_json(url, {"name": None, "quantity": None}, status=422).json
    assert problem["errors"] == [
        {"field": "name", "message": "must not be null"},
        {"field": "quantity", "message": "must not be null"},
    ]
    assert client.patch_json(url, {"description": None}).json["description"] is None


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=abc", "offset=-1", "limit=1.5", "offset=x"]
)
def test_bad_query_parameters_are_422_naming_the_parameter(client: TestApp, query: str) -> None:
    problem = client.get(f"/api/items?{query}", status=422).json
    assert [error["field"] for error in problem["errors"]] == [query.split("=")[0]]
