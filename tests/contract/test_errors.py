"""Errors are RFC 9457 problem details, always (docs/CONTRACT.md section 4)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import harness
import httpx
import pytest

from contract.helpers import (
    DESCRIPTION_TOO_LONG,
    EMPTY,
    NOT_AN_OBJECT,
    NOT_JSON,
    NOT_UTF8,
    Database,
    assert_json,
    assert_problem,
    check_common,
    create,
    describe,
    media_type,
    request_log_entries,
    uniq,
    wait_for_log,
)

MiB = 1024 * 1024

# --------------------------------------------------------------------------- 400 / 415

BAD_JSON = [
    (b'{"name": "x", "quantity": 1', NOT_JSON),
    (b"{'name': 'x'}", NOT_JSON),
    (b"", EMPTY),
    (b"not json", NOT_JSON),
    (b'{"name": "\xff\xfe", "quantity": 1}', NOT_UTF8),
    (b"[]", NOT_AN_OBJECT),
    (b'[{"name": "x", "quantity": 1}]', NOT_AN_OBJECT),
    (b'"a string"', NOT_AN_OBJECT),
    (b"42", NOT_AN_OBJECT),
    (b"null", NOT_AN_OBJECT),
    (b"true", NOT_AN_OBJECT),
]
BAD_JSON_IDS = [
    "truncated",
    "single-quotes",
    "empty",
    "text",
    "not-utf8",
    "array",
    "array-of-object",
    "string",
    "number",
    "null",
    "true",
]


@pytest.mark.parametrize(("payload", "detail"), BAD_JSON, ids=BAD_JSON_IDS)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_body_not_a_json_object_is_400(
    api: httpx.Client, method: str, payload: bytes, detail: str
) -> None:
    url = "/api/items"
    if method != "POST":
        url = f"/api/items/{create(api)['id']}"
    r = api.request(method, url, content=payload, headers={"Content-Type": "application/json"})
    assert_problem(r, 400, detail=detail)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "text/json",
    ],
    ids=["missing", "text-plain", "form", "multipart", "xml", "text-json"],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_body_with_other_content_type_is_415(
    api: httpx.Client, method: str, content_type: str | None
) -> None:
    url = "/api/items"
    if method != "POST":
        url = f"/api/items/{create(api)['id']}"
    body = json.dumps({"name": uniq(), "quantity": 1}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    req = api.build_request(method, url, content=body, headers=headers)
    if content_type is None:
        req.headers.pop("Content-Type", None)
    assert "content-type" not in req.headers or content_type is not None
    assert_problem(api.send(req), 415)


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "application/json;charset=UTF-8", "APPLICATION/JSON"],
)
def test_json_content_types_accepted(api: httpx.Client, content_type: str) -> None:
    body = json.dumps({"name": uniq(), "quantity": 1}).encode()
    r = api.post("/api/items", content=body, headers={"Content-Type": content_type})
    assert_json(r, 201)


def test_structured_json_suffix_accepted(api: httpx.Client) -> None:
    """templates/README.md: application/*+json is JSON."""
    item = create(api)
    body = json.dumps({"quantity": 11}).encode()
    r = api.patch(
        f"/api/items/{item['id']}",
        content=body,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert assert_json(r, 200)["quantity"] == 11


# --------------------------------------------------------------------------- 404 / 405


@pytest.mark.parametrize(
    "path",
    ["/nope", "/api", "/api/", "/api/nope", "/api/items/1/extra", "/health/x", "/index.html"],
)
@pytest.mark.parametrize("accept", ["application/json", "text/html,application/xhtml+xml,*/*"])
def test_unknown_path_is_404_problem(api: httpx.Client, path: str, accept: str) -> None:
    assert_problem(api.get(path, headers={"Accept": accept}), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/items", {"GET", "POST"}),
        ("PUT", "/api/items", {"GET", "POST"}),
        ("PATCH", "/api/items", {"GET", "POST"}),
        ("POST", "/api/items/{id}", {"GET", "PUT", "PATCH", "DELETE"}),
        ("POST", "/health", {"GET"}),
        ("DELETE", "/ready", {"GET"}),
    ],
)
def test_method_not_allowed(api: httpx.Client, method: str, path: str, allowed: set[str]) -> None:
    if "{id}" in path:
        path = path.replace("{id}", str(create(api)["id"]))
    kwargs = {"json": {"name": uniq(), "quantity": 1}} if method in {"POST", "PUT", "PATCH"} else {}
    r = api.request(method, path, headers={"Accept": "text/html"}, **kwargs)  # type: ignore[arg-type]
    assert_problem(r, 405)
    allow = {m.strip().upper() for m in r.headers.get("allow", "").split(",") if m.strip()}
    assert allowed <= allow, f"Allow must list {sorted(allowed)}" + describe(r)
    assert method not in allow, f"Allow must not list {method}" + describe(r)


# --------------------------------------------------------------------------- 413


def _body_of_size(size: int) -> bytes:
    head = json.dumps({"name": uniq(), "quantity": 1, "description": ""}).encode()[:-2]
    pad = size - len(head) - 2
    body = head + b"d" * pad + b'"}'
    assert len(body) == size
    json.loads(body)
    return body


def test_body_over_1mib_is_413(api: httpx.Client) -> None:
    r = api.post(
        "/api/items",
        content=_body_of_size(MiB + 1),
        headers={"Content-Type": "application/json"},
    )
    assert_problem(r, 413)


def test_chunked_body_over_1mib_is_413(api: httpx.Client) -> None:
    body = _body_of_size(2 * MiB)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    r = api.post("/api/items", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)


def test_body_of_exactly_1mib_is_not_413(api: httpx.Client) -> None:
    # Within the limit: it is read and validated (the description is too long).
    r = api.post(
        "/api/items", content=_body_of_size(MiB), headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 422, fields={"description"}, messages={"description": DESCRIPTION_TOO_LONG})


# --------------------------------------------------------------------------- 500

LEAKS = [
    "Traceback",
    'File "',
    ".py",
    "/tmp/",
    "/work/",
    "site-packages",
    "sqlalchemy",
    "sqlite3",
    "psycopg",
    "asyncpg",
    "django",
    "OperationalError",
    "ProgrammingError",
    "ValueError",
    "ValidationError",
    "not-a-number",
    "not-a-timestamp",
]
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE FROM|FROM|WHERE|RETURNING)\b")


@pytest.mark.parametrize("environment", ["production", "development"])
def test_unhandled_error_is_a_bare_500(
    environment: str,
    databases: Callable[[], Database],
    start_server: Callable[..., harness.Server],
) -> None:
    """Break the data under a running server so a read fails outside the database layer."""
    env: dict[str, str | None] = {"ENVIRONMENT": environment}
    if environment == "development":
        env["SECRET_KEY"] = None
    db = databases()
    srv = start_server(env=env, database=db, name=f"broken-{environment}")
    with srv.client() as api:
        item = create(api, name=uniq("victim"))
        path = db.break_for_500(item["id"])
        rid = uniq("rid-500")
        r = api.get(path, headers={"X-Request-ID": rid, "Accept": "text/html"})
        body = assert_problem(r, 500)
        assert r.headers.get("x-request-id") == rid, describe(r)
        for leak in [*LEAKS, str(srv.project)]:
            assert leak not in r.text, f"the 500 body leaks {leak!r}" + describe(r)
        assert not SQL.search(r.text), "the 500 body shows SQL" + describe(r)
        assert set(body) <= {"type", "title", "status", "detail", "instance"}, describe(r)
        # the server survives and still answers
        assert_json(api.get("/health"), 200)

    log = wait_for_log(
        srv.log,
        lambda text: "Traceback (most recent call last)" in text and request_log_entries(text, rid),
    )
    assert "Traceback (most recent call last)" in log, f"the log has no traceback:\n{log[-5000:]}"
    entries = request_log_entries(log, rid)
    assert len(entries) == 1, f"expected one request log line for {rid}:\n{log[-5000:]}"
    assert str(entries[0]["status"]) == "500", entries[0]
    if environment == "development":
        for key in ("method", "path", "status", "duration_ms", "request_id"):
            assert f"{key}=" in entries[0]["_line"], (
                f"development log line lacks {key}=: {entries[0]}"
            )


# --------------------------------------------------------------------------- never HTML


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/items/0"),
        ("GET", "/api/items?limit=x"),
        ("GET", "/does-not-exist"),
        ("POST", "/health"),
        ("TRACE", "/api/items"),
        ("GET", "/api/items/../../etc/passwd"),
    ],
)
def test_errors_are_never_html(api: httpx.Client, method: str, path: str) -> None:
    r = api.request(method, path, headers={"Accept": "text/html"})
    assert r.status_code >= 400, describe(r)
    check_common(r)
    assert media_type(r) == "application/problem+json", describe(r)
