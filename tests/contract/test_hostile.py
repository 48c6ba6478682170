"""Hostile input: bodies, paths and queries no form would send (docs/CONTRACT.md sections 3-4).

What the contract and templates/README.md decide for them, checked on every variant:

- A body the shared reader (``problems.parse_json_object``) refuses is 400 with one of
  its ``detail`` sentences: not UTF-8 (UTF-16, overlong forms and encoded surrogates
  included), not JSON (NaN and Infinity included), nested deeper than the parser goes
  (100,000 levels: never a 500, never a dead worker), a top-level member name with an
  unpaired surrogate (a field error could not name it).
- An integer too long for ``int()`` (5000 digits) reads like ``1e400``, an infinite
  number: its field gets the usual 422 (quantity: ``must be an integer between 0 and
  1000000``); a top-level one is a body that is not an object (400).
- Ids in the path are 1..2147483647 and ASCII digits; anything else (2^63, 5000 digits,
  NUL, invalid or non-UTF-8 percent-escapes, other scripts' digits) is 404. ``limit`` and
  ``offset`` out of range, however long, are 422 with the one query-integer message;
  an unknown parameter, however mangled, is ignored.
- ``name`` and ``description`` with NUL or an unpaired surrogate (``"\\ud800"``, which
  PostgreSQL cannot store) are 422 field errors on both databases, never a 500.
- SQL, HTML, format-string and other metacharacters are data: stored and returned
  byte for byte (checked in the database too), always as JSON, never escaped as HTML.

test_errors.py and test_items.py cover the ordinary cases (415, 400 for a body that is
not an object, 413, field bounds, unknown and read-only fields); nothing here repeats them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import harness
import httpx
import pytest

from contract.helpers import (
    LIMIT,
    NO_NUL,
    NO_SURROGATE,
    NOT_AN_OBJECT,
    NOT_JSON,
    NOT_TEXT_NAME,
    NOT_UTF8,
    OFFSET,
    QUANTITY,
    READ_ONLY_FIELD,
    TOO_DEEP,
    UNKNOWN_FIELD,
    Database,
    assert_item,
    assert_json,
    assert_problem,
    create,
    describe,
    uniq,
)

JSON = {"Content-Type": "application/json"}
WRITES = ["POST", "PUT", "PATCH"]


# What no response body may show: tracebacks, Python's own error text, framework internals.
LEAKS = [
    "Traceback",
    'File "',
    "Error:",
    "RecursionError",
    "recursion",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "codec can't",
    "surrogates not allowed",
    "set_int_max_str_digits",
    "Exceeds the limit",
    "JSONDecodeError",
    "Expecting value",
    "line 1 column",
    "pydantic",
    "<html",
    "<!DOCTYPE",
]
# What the server log must not show after hostile requests.
CRASHES = ["Traceback", "RecursionError", "WORKER TIMEOUT", "Worker exited", "Segmentation fault"]


def problem(
    r: httpx.Response,
    status: int,
    detail: str | None = None,
    messages: dict[str, str] | None = None,
    fields: set[str] | None = None,
    case: str = "",
) -> dict[str, Any]:
    """A contract problem; 422: exactly these fields (with these messages); no leaks."""
    if messages is not None and fields is None:
        fields = set(messages)
    try:
        body = assert_problem(r, status, fields=fields, messages=messages, detail=detail)
        for leak in LEAKS:
            assert leak not in r.text, f"the response shows {leak!r}" + describe(r)
    except AssertionError as exc:
        if case:
            raise AssertionError(f"[{case}] {exc}") from None
        raise
    return body


def send(api: httpx.Client, method: str, path: str, content: bytes | None = None) -> httpx.Response:
    """A request with this exact target (no re-encoding of ``%``) and, if given, a JSON body."""
    url = api.base_url.copy_with(raw_path=path.encode("ascii"))
    headers = JSON if content is not None else {}
    return api.send(api.build_request(method, url, content=content, headers=headers))


def write_urls(api: httpx.Client) -> dict[str, str]:
    """Where each write method goes: POST the collection, PUT and PATCH an existing item."""
    item = f"/api/items/{create(api)['id']}"
    return {"POST": "/api/items", "PUT": item, "PATCH": item}


def full_body(field: str, raw: bytes) -> bytes:
    """A body valid for POST and PUT but for ``field``, whose JSON text is ``raw``."""
    fields = {"name": json.dumps(uniq()).encode(), "quantity": b"1", field: raw}
    return b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in fields.items()) + b"}"


@pytest.fixture
def quiet_log(server: harness.Server) -> Iterator[None]:
    """Fail if, while the test runs, the server logs a traceback or a worker dies."""
    assert server.proc is not None
    processes = set(harness.group_members(server.proc.pid))
    start = len(server.log())
    yield
    new = server.log()[start:]
    for sign in CRASHES:
        assert sign not in new, f"the server log shows {sign!r}:\n{new[-4000:]}"
    # A worker still starting may join; none may go (a dead worker is replaced by a new pid).
    gone = processes - set(harness.group_members(server.proc.pid))
    assert not gone, f"server processes {sorted(gone)} died:\n{new[-4000:]}"


# --------------------------------------------------------------------------- nesting

DEPTH = 100_000
NESTED = {
    "arrays": b"[" * DEPTH + b"]" * DEPTH,
    "objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "in-a-field": full_body("description", b"[" * DEPTH + b"]" * DEPTH),
    "unclosed": b'{"name":' + b"[" * DEPTH,
}


def test_deeply_nested_body_is_400(api: httpx.Client, quiet_log: None) -> None:
    """100,000 levels: the parser gives up (400), the worker lives on."""
    for method, url in write_urls(api).items():
        for shape, body in NESTED.items():
            r = api.request(method, url, content=body, headers=JSON)
            problem(r, 400, TOO_DEEP, case=f"{method} {shape}")
    assert_json(api.get("/health"), 200)
    create(api)  # the same workers still serve writes


def test_moderate_nesting_is_an_ordinary_422(api: httpx.Client, quiet_log: None) -> None:
    """Nesting the parser reads (100 levels) is just JSON: the fields decide."""
    body = full_body("description", b"[" * 100 + b"]" * 100)
    problem(api.post("/api/items", content=body, headers=JSON), 422, fields={"description"})
    r = api.post("/api/items", content=b'{"a":' * 100 + b"1" + b"}" * 100, headers=JSON)
    missing = {"name": "field required", "quantity": "field required"}
    problem(r, 422, messages={"a": UNKNOWN_FIELD, **missing})


# --------------------------------------------------------------------------- bytes and syntax

NOT_UTF8_BODIES = {
    "utf-16": '{"name": "caf\u00e9", "quantity": 1}'.encode("utf-16"),
    "utf-16-be": '{"name": "caf\u00e9", "quantity": 1}'.encode("utf-16-be"),
    "latin-1": '{"name": "caf\u00e9", "quantity": 1}'.encode("latin-1"),
    "overlong-slash": b'{"name": "a\xc0\xafb", "quantity": 1}',
    "encoded-surrogate": b'{"name": "a\xed\xa0\x80b", "quantity": 1}',
    "truncated-sequence": b'{"name": "a\xe2\x82", "quantity": 1}',
    "beyond-unicode": b'{"name": "a\xf4\x90\x80\x80", "quantity": 1}',
}


def test_body_not_utf8_is_400(api: httpx.Client, quiet_log: None) -> None:
    for case, body in NOT_UTF8_BODIES.items():
        r = api.post("/api/items", content=body, headers=JSON)
        problem(r, 400, NOT_UTF8, case=case)
    for method, url in write_urls(api).items():
        body = NOT_UTF8_BODIES["encoded-surrogate"]
        problem(api.request(method, url, content=body, headers=JSON), 400, NOT_UTF8, case=method)


def test_nan_and_infinity_are_not_json(api: httpx.Client) -> None:
    for method, url in write_urls(api).items():
        for constant in (b"NaN", b"Infinity", b"-Infinity"):
            r = api.request(method, url, content=full_body("quantity", constant), headers=JSON)
            problem(r, 400, NOT_JSON, case=f"{method} {constant.decode()}")


# --------------------------------------------------------------------------- huge numbers

HUGE = {
    "10^30": b"1" + b"0" * 30,
    "-10^30": b"-1" + b"0" * 30,
    "5000-digits": b"9" * 5000,
    "-5000-digits": b"-" + b"9" * 5000,
    "1e400": b"1e400",
}


def test_huge_quantity_is_a_field_error(api: httpx.Client, quiet_log: None) -> None:
    """Beyond int()'s 4300 digits too: a 422 for quantity, not a 400 or a 500."""
    for method, url in write_urls(api).items():
        for case, number in HUGE.items():
            r = api.request(method, url, content=full_body("quantity", number), headers=JSON)
            problem(r, 422, messages={"quantity": QUANTITY}, case=f"{method} {case}")


def test_5000_digit_number_elsewhere(api: httpx.Client, quiet_log: None) -> None:
    digits = b"9" * 5000
    for field, message in (
        ("name", None),
        ("description", None),
        ("colour", UNKNOWN_FIELD),
        ("id", READ_ONLY_FIELD),
    ):
        r = api.post("/api/items", content=full_body(field, digits), headers=JSON)
        problem(r, 422, fields={field}, messages={field: message} if message else None, case=field)
    problem(api.post("/api/items", content=digits, headers=JSON), 400, NOT_AN_OBJECT)


HUGE_IDS = [str(2**63 - 1), str(2**63), str(2**64), "9" * 5000, "-" + "9" * 5000]


def test_huge_ids_are_404(api: httpx.Client, quiet_log: None) -> None:
    for item_id in HUGE_IDS:
        url = f"/api/items/{item_id}"
        problem(api.get(url), 404)
        problem(api.put(url, json={"name": uniq(), "quantity": 1}), 404)
        problem(api.patch(url, json={"quantity": 1}), 404)
        problem(api.delete(url), 404)


HUGE_QUERIES = [
    (f"offset={2**64}", {"offset": OFFSET}),
    ("offset=" + "9" * 5000, {"offset": OFFSET}),
    ("offset=-" + "9" * 5000, {"offset": OFFSET}),
    ("limit=" + "9" * 5000, {"limit": LIMIT}),
    ("limit=" + "9" * 5000 + "&offset=" + "9" * 2000, {"limit": LIMIT, "offset": OFFSET}),
]


def test_huge_query_integers_are_422(api: httpx.Client, quiet_log: None) -> None:
    for query, messages in HUGE_QUERIES:
        problem(api.get(f"/api/items?{query}"), 422, messages=messages)


# --------------------------------------------------------------------------- NUL


@pytest.mark.parametrize("field", ["name", "description"])
def test_nul_in_text_is_a_field_error(api: httpx.Client, field: str) -> None:
    for method, url in write_urls(api).items():
        for text in ("\x00", "a\x00b", "tail\x00"):
            r = api.request(method, url, json={"name": uniq(), "quantity": 1, field: text})
            problem(r, 422, messages={field: NO_NUL}, case=f"{method} {text!r}")


def test_nul_in_a_member_name_is_an_unknown_field(api: httpx.Client) -> None:
    body = {"name": uniq(), "quantity": 1, "a\x00b": 1}
    problem(api.post("/api/items", json=body), 422, messages={"a\x00b": UNKNOWN_FIELD})


# --------------------------------------------------------------------------- paths and queries

# Path ids around an existing item's id ("{id}"): none of them names it.
BAD_PATH_IDS = {
    "nul": "%00",
    "id-then-nul": "{id}%00",
    "bad-escape": "%zz",
    "lone-percent": "%",
    "truncated-escape": "{id}%2",
    "not-utf8": "%ff",
    "overlong": "%C0%AF",
    "encoded-surrogate": "%ED%A0%80",
    "arabic-indic-digits": "{arabic}",
    "fullwidth-digits": "{fullwidth}",
    "encoded-slash": "{id}%2F{id}",
    "plus-sign": "+{id}",
    "encoded-plus": "%2B{id}",
    "leading-space": "%20{id}",
    "trailing-space": "{id}%20",
    "point-zero": "{id}.0",
    "sql": "{id}%20OR%201=1",
    "sql-quote": "{id}';DROP%20TABLE%20items;--",
    "html": "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
}


def _digits(item_id: int, zero: str) -> str:
    """The id in another script's digits, percent-encoded as UTF-8."""
    text = "".join(chr(ord(zero) + int(d)) for d in str(item_id))
    return "".join(f"%{b:02X}" for b in text.encode())


def test_mangled_ids_are_404(api: httpx.Client, quiet_log: None) -> None:
    real = create(api)["id"]
    arabic, fullwidth = _digits(real, "\u0660"), _digits(real, "\uff10")
    put = json.dumps({"name": uniq(), "quantity": 1}).encode()
    for case, template in BAD_PATH_IDS.items():
        path = "/api/items/" + template.format(id=real, arabic=arabic, fullwidth=fullwidth)
        problem(send(api, "GET", path), 404, case=case)
        problem(send(api, "DELETE", path), 404, case=case)
        problem(send(api, "PATCH", path, b'{"quantity": 7}'), 404, case=case)
        problem(send(api, "PUT", path, put), 404, case=case)
    after = assert_json(api.get(f"/api/items/{real}"), 200)
    assert after["quantity"] == 1, f"a mangled id changed item {real}: {after}"


MANGLED_QUERIES = {
    "nul": ("limit=%00", {"limit": LIMIT}),
    "digit-then-nul": ("offset=1%00", {"offset": OFFSET}),
    "bad-escape": ("limit=%zz", {"limit": LIMIT}),
    "lone-percent": ("limit=%", {"limit": LIMIT}),
    "not-utf8": ("limit=%ff", {"limit": LIMIT}),
    "encoded-surrogate": ("offset=%ED%A0%80", {"offset": OFFSET}),
    "arabic-indic-one": ("limit=%D9%A1", {"limit": LIMIT}),
    "sql": ("limit=1%27%20OR%20%271%27=%271", {"limit": LIMIT}),
    "both": ("limit=%ff&offset=%00", {"limit": LIMIT, "offset": OFFSET}),
}


def test_mangled_query_values_are_422(api: httpx.Client, quiet_log: None) -> None:
    for case, (query, messages) in MANGLED_QUERIES.items():
        problem(send(api, "GET", f"/api/items?{query}"), 422, messages=messages, case=case)


def test_mangled_unknown_parameters_are_ignored(api: httpx.Client, quiet_log: None) -> None:
    for query in ("%00=1", "%ff=1", "%zz=%zz", "a=%ED%A0%80", "%3Cscript%3E=1", "=", "&&&"):
        r = send(api, "GET", f"/api/items?{query}&limit=1")
        page = assert_json(r, 200)
        assert page["limit"] == 1 and page["offset"] == 0, describe(r)


# --------------------------------------------------------------------------- unpaired surrogates

# JSON escapes: the unpaired ones cannot even be encoded by json.dumps(...).encode().
SURROGATES = {
    "high": "\\ud800",
    "low": "\\udfff",
    "reversed-pair": "\\ude00\\ud83d",
    "high-then-text": "\\udbffx",
}


@pytest.mark.parametrize("field", ["name", "description"])
def test_unpaired_surrogate_is_a_field_error(
    api: httpx.Client, quiet_log: None, field: str
) -> None:
    """PostgreSQL cannot store one and no UTF-8 encodes one: 422, never 500."""
    for method, url in write_urls(api).items():
        for case, escape in SURROGATES.items():
            body = full_body(field, f'"{uniq()}{escape}"'.encode())
            r = api.request(method, url, content=body, headers=JSON)
            problem(r, 422, messages={field: NO_SURROGATE}, case=f"{method} {case}")


def test_escaped_surrogate_pair_is_one_character(api: httpx.Client) -> None:
    """A valid pair, escaped, is the character it encodes (U+1F600), stored and returned."""
    name = uniq("pair")
    raw = f'{{"name": "{name}\\ud83d\\ude00", "description": "\\ud83d\\ude00", "quantity": 1}}'
    r = api.post("/api/items", content=raw.encode(), headers=JSON)
    item = assert_item(assert_json(r, 201), name=f"{name}\U0001f600", description="\U0001f600")
    assert assert_json(api.get(f"/api/items/{item['id']}"), 200) == item


def test_unpaired_surrogate_in_other_places(api: httpx.Client, quiet_log: None) -> None:
    # In a member name: no field error could name it, so the body as a whole is refused.
    raw = f'{{"name": "{uniq()}", "quantity": 1, "k\\ud800": 1}}'.encode()
    problem(api.post("/api/items", content=raw, headers=JSON), 400, NOT_TEXT_NAME)
    # In the value of an unknown field: that field is named, the value is not stored.
    raw = f'{{"name": "{uniq()}", "quantity": 1, "colour": "\\ud800"}}'.encode()
    r = api.post("/api/items", content=raw, headers=JSON)
    problem(r, 422, messages={"colour": UNKNOWN_FIELD})


# --------------------------------------------------------------------------- metacharacters

METACHARACTERS = {
    "sql": "'; DROP TABLE items; --",
    "sql-paren": "Robert'); DROP TABLE items;--",
    "sql-comment": "x' /* */ OR '1'='1",
    "html": "<script>alert(1)</script>",
    "html-attribute": '"><img src=x onerror=alert(1)>',
    "like-wildcards": "100% _off_ %% __",
    "backslashes": "C:\\temp\\new \\\\server\\share \\x00 \\n",
    "quotes": "'single' \"double\" `back` \u2018curly\u2019",
    "placeholders": "%s %d %(name)s {0} {name} $1 ? :name",
    "emoji": "\U0001f600 \U0001f44d\U0001f3fd \U0001d54f \u2764\ufe0f",
    "bidi-and-combining": "\u202eevil\u202c e\u0301 \u200b\ufeff",
    "controls": "tab\there\nnewline \x1b[31mred\x1b[0m \x7f \x01",
}


def _stored(db: Database, item_id: int) -> tuple[bytes, bytes | None]:
    """The item's name and description as the database holds them, as UTF-8 bytes."""
    table = db.items_table()
    if db.kind == "sqlite":
        assert db.sqlite_path is not None
        with sqlite3.connect(db.sqlite_path, timeout=30) as con:
            con.text_factory = bytes
            row = con.execute(
                f'SELECT name, description FROM "{table}" WHERE id = ?', (item_id,)
            ).fetchone()
        assert row is not None, f"item {item_id} is not in the database"
        return row[0], row[1]
    out = db.psql(
        "SELECT encode(convert_to(name, 'UTF8'), 'hex') || '|' || "
        "coalesce(encode(convert_to(description, 'UTF8'), 'hex'), 'null') "
        f'FROM "{table}" WHERE id = {int(item_id)}'
    ).strip()
    name, description = out.split("|")
    return bytes.fromhex(name), None if description == "null" else bytes.fromhex(description)


def _verbatim(r: httpx.Response, status: int, kind: str, **expected: Any) -> dict[str, Any]:
    """A JSON (never HTML) item response holding exactly the expected strings."""
    try:
        item = assert_item(assert_json(r, status), **expected)
    except AssertionError as exc:
        raise AssertionError(f"[{kind}] {exc}" + describe(r)) from None
    assert "&lt;" not in r.text and "&#" not in r.text, f"[{kind}] HTML-escaped" + describe(r)
    return item


def test_metacharacters_are_stored_and_returned_verbatim(
    api: httpx.Client, main_db: Database
) -> None:
    for kind, text in METACHARACTERS.items():
        name = f"{text} {uniq()}"
        r = api.post("/api/items", json={"name": name, "description": text, "quantity": 1})
        item = _verbatim(r, 201, kind, name=name, description=text)
        url = f"/api/items/{item['id']}"
        assert _stored(main_db, item["id"]) == (name.encode(), text.encode()), kind
        assert _verbatim(api.get(url), 200, kind, name=name, description=text) == item

        # the last item of the list (ids ascending)
        total = assert_json(api.get("/api/items", params={"limit": 1}), 200)["total"]
        page = assert_json(api.get("/api/items", params={"offset": total - 1}), 200)
        assert page["items"] == [item], f"[{kind}] {page}"

        # replaced and patched with the same kind of text
        renamed = f"{uniq()} {text}"
        r = api.put(url, json={"name": renamed, "description": text[::-1], "quantity": 2})
        _verbatim(r, 200, kind, name=renamed, description=text[::-1])
        r = api.patch(url, json={"description": text + text})
        _verbatim(r, 200, kind, name=renamed, description=text + text)
        assert _stored(main_db, item["id"]) == (renamed.encode(), (text + text).encode()), kind


def test_like_wildcards_do_not_collide(api: httpx.Client) -> None:
    """Names that a LIKE pattern would confuse are distinct; only the same name is a 409."""
    tag = uniq("like")
    for name in (f"{tag}%", f"{tag}_", f"{tag}x", f"{tag}\\%", f"{tag}\\_"):
        assert create(api, name=name)["name"] == name
    problem(api.post("/api/items", json={"name": f"{tag}%", "quantity": 1}), 409)


def test_metacharacters_in_a_member_name(api: httpx.Client) -> None:
    """An unknown field is named as sent, in a JSON problem, never in HTML."""
    names = ["<script>alert(1)</script>", "'; DROP TABLE items; --", "%s{0}"]
    body: dict[str, Any] = {"name": uniq(), "quantity": 1, **dict.fromkeys(names, 1)}
    r = api.post("/api/items", json=body)
    problem(r, 422, messages=dict.fromkeys(names, UNKNOWN_FIELD))
    assert "&lt;" not in r.text, describe(r)
