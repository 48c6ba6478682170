"""The items resource (docs/CONTRACT.md section 3, "The item", and templates/README.md)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest

from contract.helpers import (
    BLANK,
    DESCRIPTION_TOO_LONG,
    FIELD_REQUIRED,
    LIMIT,
    MAX_ID,
    MAX_OFFSET,
    NAME_TOO_LONG,
    NO_NUL,
    NOT_A_STRING,
    NOT_NULL,
    OFFSET,
    PAGE_KEYS,
    QUANTITY,
    READ_ONLY_FIELD,
    UNKNOWN_FIELD,
    assert_item,
    assert_json,
    assert_problem,
    create,
    describe,
    parse_ts,
    uniq,
)

# --------------------------------------------------------------------------- CRUD


def test_create_get_and_location(api: httpx.Client) -> None:
    name = uniq()
    r = api.post("/api/items", json={"name": name, "description": "a thing", "quantity": 3})
    item = assert_item(assert_json(r, 201), name=name, description="a thing", quantity=3)
    assert r.headers.get("location") == f"/api/items/{item['id']}", describe(r)
    assert item["created_at"] == item["updated_at"] or parse_ts(item["updated_at"]) >= parse_ts(
        item["created_at"]
    )
    got = assert_json(api.get(f"/api/items/{item['id']}"), 200)
    assert got == item


def test_description_defaults_to_null(api: httpx.Client) -> None:
    item = create(api)
    assert item["description"] is None
    assert create(api, description=None)["description"] is None


def test_put_replaces_the_whole_item(api: httpx.Client) -> None:
    item = create(api, description="old", quantity=5)
    name = uniq("put")
    r = api.put(f"/api/items/{item['id']}", json={"name": name, "quantity": 9})
    # full replacement: the omitted description goes back to its default
    new = assert_item(assert_json(r, 200), id=item["id"], name=name, quantity=9, description=None)
    assert new["created_at"] == item["created_at"]
    assert parse_ts(new["updated_at"]) >= parse_ts(item["updated_at"])
    assert assert_json(api.get(f"/api/items/{item['id']}"), 200) == new


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"quantity": 1}, {"name"}),
        ({"name": "only-name"}, {"quantity"}),
        ({"description": "d"}, {"name", "quantity"}),
        ({}, {"name", "quantity"}),
    ],
)
def test_put_requires_name_and_quantity(
    api: httpx.Client, body: dict[str, Any], missing: set[str]
) -> None:
    item = create(api)
    r = api.put(f"/api/items/{item['id']}", json=body)
    assert_problem(r, 422, fields=missing, messages=dict.fromkeys(missing, FIELD_REQUIRED))


def test_post_requires_name_and_quantity(api: httpx.Client) -> None:
    for body, missing in (
        ({}, {"name", "quantity"}),
        ({"name": uniq()}, {"quantity"}),
        ({"quantity": 2}, {"name"}),
    ):
        r = api.post("/api/items", json=body)
        assert_problem(r, 422, fields=missing, messages=dict.fromkeys(missing, FIELD_REQUIRED))


def test_patch_is_partial(api: httpx.Client) -> None:
    item = create(api, description="keep me", quantity=5)
    r = api.patch(f"/api/items/{item['id']}", json={"quantity": 6})
    assert_item(
        assert_json(r, 200), id=item["id"], name=item["name"], description="keep me", quantity=6
    )
    new_name = uniq("patched")
    r = api.patch(f"/api/items/{item['id']}", json={"name": new_name, "description": None})
    patched = assert_item(assert_json(r, 200), name=new_name, description=None, quantity=6)
    assert patched["created_at"] == item["created_at"]
    assert assert_json(api.get(f"/api/items/{item['id']}"), 200) == patched


def test_patch_empty_object_touches_updated_at(api: httpx.Client) -> None:
    item = create(api, description="same")
    time.sleep(1.1)  # whatever the timestamp resolution, updated_at must move
    r = api.patch(f"/api/items/{item['id']}", json={})
    after = assert_item(assert_json(r, 200))
    assert {k: after[k] for k in ("id", "name", "description", "quantity", "created_at")} == {
        k: item[k] for k in ("id", "name", "description", "quantity", "created_at")
    }
    assert parse_ts(after["updated_at"]) > parse_ts(item["updated_at"]), (
        f"PATCH {{}} must touch updated_at: before {item}, after {after}"
    )


@pytest.mark.parametrize("field", ["name", "quantity"])
def test_patch_null_required_field(api: httpx.Client, field: str) -> None:
    item = create(api)
    r = api.patch(f"/api/items/{item['id']}", json={field: None})
    assert_problem(r, 422, fields={field}, messages={field: NOT_NULL})


def test_delete(api: httpx.Client) -> None:
    item = create(api)
    r = api.delete(f"/api/items/{item['id']}")
    assert r.status_code == 204, describe(r)
    assert r.content == b"", "204 must have an empty body" + describe(r)
    assert r.headers.get("x-content-type-options") == "nosniff", describe(r)
    assert r.headers.get("x-request-id"), describe(r)
    assert_problem(api.get(f"/api/items/{item['id']}"), 404)
    assert_problem(api.delete(f"/api/items/{item['id']}"), 404)
    assert_problem(api.put(f"/api/items/{item['id']}", json={"name": uniq(), "quantity": 1}), 404)
    assert_problem(api.patch(f"/api/items/{item['id']}", json={"quantity": 1}), 404)


# --------------------------------------------------------------------------- ids in the path

BAD_IDS = [
    "0",
    "-1",
    "abc",
    "1.5",
    "1e3",
    "%20",
    str(MAX_ID + 1),
    "99999999999999999999999999",
    "-99999999999999999999999999",
]


@pytest.mark.parametrize("item_id", [*BAD_IDS, str(MAX_ID)])
def test_unknown_or_invalid_id_is_404(api: httpx.Client, item_id: str) -> None:
    url = f"/api/items/{item_id}"
    assert_problem(api.get(url), 404)
    assert_problem(api.put(url, json={"name": uniq(), "quantity": 1}), 404)
    assert_problem(api.patch(url, json={"quantity": 1}), 404)
    assert_problem(api.delete(url), 404)


# --------------------------------------------------------------------------- listing


def _all_items(api: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = assert_json(api.get("/api/items", params={"limit": 100, "offset": offset}), 200)
        assert set(page) == PAGE_KEYS, page
        items.extend(page["items"])
        offset += 100
        if offset >= page["total"]:
            return items


def test_list_envelope_and_defaults(api: httpx.Client) -> None:
    for _ in range(3):
        create(api)
    page = assert_json(api.get("/api/items"), 200)
    assert set(page) == PAGE_KEYS, page
    assert page["limit"] == 20 and page["offset"] == 0, page
    assert type(page["total"]) is int and page["total"] >= 3, page
    assert len(page["items"]) == min(20, page["total"]), page
    for item in page["items"]:
        assert_item(item)


def test_list_is_ordered_by_id_and_pages_cover_everything(api: httpx.Client) -> None:
    created = [create(api)["id"] for _ in range(5)]
    items = _all_items(api)
    ids = [i["id"] for i in items]
    assert ids == sorted(ids) and len(ids) == len(set(ids)), ids
    assert set(created) <= set(ids)
    total = assert_json(api.get("/api/items"), 200)["total"]
    assert len(items) == total

    # a small window in the middle of the list
    page = assert_json(api.get("/api/items", params={"limit": 2, "offset": total - 3}), 200)
    assert page["limit"] == 2 and page["offset"] == total - 3 and page["total"] == total
    assert [i["id"] for i in page["items"]] == ids[total - 3 : total - 1]


@pytest.mark.parametrize(
    ("params", "limit", "offset"),
    [
        ({"limit": 1}, 1, 0),
        ({"limit": 100}, 100, 0),
        ({"offset": 0}, 20, 0),
        ({"limit": "7", "offset": "1"}, 7, 1),
    ],
)
def test_list_bounds_accepted(
    api: httpx.Client, params: dict[str, Any], limit: int, offset: int
) -> None:
    create(api)
    page = assert_json(api.get("/api/items", params=params), 200)
    assert page["limit"] == limit and page["offset"] == offset, page
    assert len(page["items"]) == max(0, min(limit, page["total"] - offset)), page


def test_offset_beyond_the_end_and_max_offset(api: httpx.Client) -> None:
    total = assert_json(api.get("/api/items"), 200)["total"]
    page = assert_json(api.get("/api/items", params={"offset": total}), 200)
    assert page["items"] == [] and page["total"] == total, page
    page = assert_json(api.get("/api/items", params={"offset": MAX_OFFSET}), 200)
    assert page["items"] == [] and page["offset"] == MAX_OFFSET, page


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("limit=0", {"limit"}),
        ("limit=101", {"limit"}),
        ("limit=-1", {"limit"}),
        ("limit=abc", {"limit"}),
        ("limit=1.5", {"limit"}),
        ("limit=", {"limit"}),
        ("limit=true", {"limit"}),
        ("limit=99999999999999999999999", {"limit"}),
        ("offset=-1", {"offset"}),
        ("offset=abc", {"offset"}),
        ("offset=2.0", {"offset"}),
        (f"offset={MAX_OFFSET + 1}", {"offset"}),
        ("limit=0&offset=-1", {"limit", "offset"}),
    ],
)
def test_list_bad_query_parameters(api: httpx.Client, query: str, fields: set[str]) -> None:
    messages = {field: {"limit": LIMIT, "offset": OFFSET}[field] for field in fields}
    assert_problem(api.get(f"/api/items?{query}"), 422, fields=fields, messages=messages)


# --------------------------------------------------------------------------- name


def test_name_is_stripped(api: httpx.Client) -> None:
    name = uniq("strip")
    item = create(api, name=f" \t\n\r\f\v{name}  \t")
    assert item["name"] == name
    assert assert_json(api.get(f"/api/items/{item['id']}"), 200)["name"] == name
    inner = f"{uniq('inner')} with  spaces"
    assert create(api, name=f"  {inner} ")["name"] == inner


def test_name_strips_only_ascii_whitespace(api: httpx.Client) -> None:
    """templates/README.md: exactly " \\t\\n\\r\\f\\v" are stripped, not e.g. NO-BREAK SPACE."""
    name = f"\u00a0{uniq('nbsp')}\u00a0"
    assert create(api, name=name)["name"] == name


def test_name_length_bounds(api: httpx.Client) -> None:
    one = chr(0x4E00 + secrets.randbelow(20000))  # a 1-character name nobody else uses
    assert create(api, name=one)["name"] == one
    long = uniq("long")
    long = long + "x" * (200 - len(long))
    assert create(api, name=long)["name"] == long
    long2 = uniq("long2")
    long2 = long2 + "y" * (200 - len(long2))
    assert create(api, name=f"  {long2}\t")["name"] == long2  # 200 after stripping


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", BLANK),
        (" ", BLANK),
        (" \t\n\r\f\v ", BLANK),
        ("x" * 201, NAME_TOO_LONG),
        ("a\x00b", NO_NUL),
        (5, NOT_A_STRING),
        (True, NOT_A_STRING),
        (None, NOT_NULL),
        (["x"], NOT_A_STRING),
        ({"x": 1}, NOT_A_STRING),
    ],
    ids=["empty", "space", "whitespace", "201", "nul", "int", "bool", "null", "list", "object"],
)
def test_name_rejected(api: httpx.Client, name: Any, message: str) -> None:
    expected = {"fields": {"name"}, "messages": {"name": message}}
    assert_problem(api.post("/api/items", json={"name": name, "quantity": 1}), 422, **expected)
    item = create(api)
    url = f"/api/items/{item['id']}"
    assert_problem(api.put(url, json={"name": name, "quantity": 1}), 422, **expected)
    assert_problem(api.patch(url, json={"name": name}), 422, **expected)


def test_name_is_unique(api: httpx.Client) -> None:
    name = uniq("dup")
    create(api, name=name)
    assert_problem(api.post("/api/items", json={"name": name, "quantity": 2}), 409)
    # the same after stripping
    assert_problem(api.post("/api/items", json={"name": f"  {name} ", "quantity": 2}), 409)


def test_rename_to_an_existing_name_is_409(api: httpx.Client) -> None:
    first = create(api)
    second = create(api)
    url = f"/api/items/{second['id']}"
    assert_problem(api.put(url, json={"name": first["name"], "quantity": 1}), 409)
    assert_problem(api.patch(url, json={"name": first["name"]}), 409)
    assert assert_json(api.get(url), 200) == second  # unchanged
    # keeping one's own name is not a conflict
    assert_json(api.put(url, json={"name": second["name"], "quantity": 4}), 200)
    assert_json(api.patch(url, json={"name": second["name"]}), 200)


# --------------------------------------------------------------------------- description


def test_description_bounds(api: httpx.Client) -> None:
    text = "d" * 2000
    assert create(api, description=text)["description"] == text
    assert create(api, description="")["description"] == ""


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("d" * 2001, DESCRIPTION_TOO_LONG),
        ("a\x00b", NO_NUL),
        (5, NOT_A_STRING),
        (True, NOT_A_STRING),
        (["x"], NOT_A_STRING),
    ],
    ids=["2001", "nul", "int", "bool", "list"],
)
def test_description_rejected(api: httpx.Client, description: Any, message: str) -> None:
    expected = {"fields": {"description"}, "messages": {"description": message}}
    body = {"name": uniq(), "quantity": 1, "description": description}
    assert_problem(api.post("/api/items", json=body), 422, **expected)
    item = create(api)
    r = api.patch(f"/api/items/{item['id']}", json={"description": description})
    assert_problem(r, 422, **expected)


# --------------------------------------------------------------------------- quantity


@pytest.mark.parametrize("quantity", [0, 1_000_000])
def test_quantity_bounds_accepted(api: httpx.Client, quantity: int) -> None:
    item = create(api, quantity=quantity)
    assert item["quantity"] == quantity
    r = api.patch(f"/api/items/{item['id']}", json={"quantity": quantity})
    assert assert_json(r, 200)["quantity"] == quantity


@pytest.mark.parametrize(
    "quantity",
    [-1, 1_000_001, 2**31, 2**63, 10**30, 1.0, 1.5, True, False, "5", None, [1], {"n": 1}],
    ids=[
        "-1",
        "1000001",
        "2^31",
        "2^63",
        "10^30",
        "float-1.0",
        "float-1.5",
        "true",
        "false",
        "string",
        "null",
        "list",
        "object",
    ],
)
def test_quantity_rejected(api: httpx.Client, quantity: Any) -> None:
    expected = {
        "fields": {"quantity"},
        "messages": {"quantity": NOT_NULL if quantity is None else QUANTITY},
    }
    assert_problem(
        api.post("/api/items", json={"name": uniq(), "quantity": quantity}), 422, **expected
    )
    item = create(api)
    url = f"/api/items/{item['id']}"
    assert_problem(api.put(url, json={"name": uniq(), "quantity": quantity}), 422, **expected)
    assert_problem(api.patch(url, json={"quantity": quantity}), 422, **expected)


def test_several_bad_fields_are_all_reported(api: httpx.Client) -> None:
    body = {"name": "", "quantity": -5, "description": 7}
    messages = {"name": BLANK, "quantity": QUANTITY, "description": NOT_A_STRING}
    assert_problem(api.post("/api/items", json=body), 422, messages=messages, fields=set(messages))


# --------------------------------------------------------------------------- extra fields


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_unknown_field_rejected(api: httpx.Client, method: str) -> None:
    item = create(api)
    url = "/api/items" if method == "post" else f"/api/items/{item['id']}"
    body = {"name": uniq(), "quantity": 1, "colour": "red"}
    r = api.request(method.upper(), url, json=body)
    assert_problem(r, 422, fields={"colour"}, messages={"colour": UNKNOWN_FIELD})


@pytest.mark.parametrize("field", ["id", "created_at", "updated_at"])
@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_read_only_field_rejected(api: httpx.Client, method: str, field: str) -> None:
    item = create(api)
    url = "/api/items" if method == "post" else f"/api/items/{item['id']}"
    body = {"name": uniq(), "quantity": 1, field: item[field]}
    r = api.request(method.upper(), url, json=body)
    assert_problem(r, 422, fields={field}, messages={field: READ_ONLY_FIELD})
    assert assert_json(api.get(f"/api/items/{item['id']}"), 200) == item
