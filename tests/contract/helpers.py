"""Assertions and database handles shared by the contract tests."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import postgres

# --------------------------------------------------------------------------- expected texts
# What every starter says, byte for byte (the generated `problems.py`; templates/README.md
# "Wire details"). The one place the contract suite spells them.

# RFC 9110 reason phrases: the problem `title` of each status.
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
# The `detail` of each status that has one situation (a 400 has several: below; a 422
# counts its fields: `field_count_detail`).
DETAILS = {
    404: "there is nothing at this URL",
    405: "this method is not allowed here; the Allow header lists those that are",
    409: "an item with this name already exists",
    413: "the request body is larger than 1048576 bytes (1 MiB)",
    415: "the request body must be JSON (Content-Type: application/json)",
    500: "an unexpected error occurred; it has been logged",
    503: "the database is unavailable; try again later",
}
# The 503 of every API request while the database schema is behind the migrations.
MIGRATIONS_PENDING = "the database schema is not up to date; run make migrate"
# Why a JSON body is refused: the `detail` of each 400.
EMPTY = "the request body is empty; send a JSON object"
NOT_UTF8 = "the request body is not UTF-8"
NOT_JSON = "the request body is not valid JSON"
TOO_DEEP = "the request body is nested too deeply"
NOT_AN_OBJECT = "the request body must be a JSON object"
NOT_TEXT_NAME = "a member name in the request body is not Unicode text"
# The `message` of a field error.
FIELD_REQUIRED = "field required"
UNKNOWN_FIELD = "unknown field"
READ_ONLY_FIELD = "read-only field"
NOT_NULL = "must not be null"
NOT_A_STRING = "must be a string"
BLANK = "must not be blank"
NO_NUL = "must not contain NUL characters"
NO_SURROGATE = "must not contain unpaired surrogates"
NAME_TOO_LONG = "must be at most 200 characters"
DESCRIPTION_TOO_LONG = "must be at most 2000 characters"
QUANTITY = "must be an integer between 0 and 1000000"
LIMIT = "must be an integer between 1 and 100"
OFFSET = "must be an integer between 0 and 2147483647"

# needs_auth (docs/CONTRACT.md section 7): the `detail` of each refusal, the challenges,
# and the field messages of the users' endpoints.
UNAUTHENTICATED = "this request needs valid credentials"  # no Bearer token at all
INVALID_TOKEN = "the access token is invalid or has expired"
BAD_CREDENTIALS = "the username or password is incorrect"
SIGN_IN_THROTTLED = "too many failed sign-ins for this username; retry later"
SIGN_UP_CLOSED = "sign-up is closed; an administrator creates accounts (make createuser)"
DUPLICATE_USERNAME = "a user with this username already exists"
CURRENT_PASSWORD_INCORRECT = "the current password is incorrect"
NOT_FORM_TYPE = (
    "the request body must be form-encoded (Content-Type: application/x-www-form-urlencoded)"
)
CHALLENGE = "Bearer"
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'
PASSWORD_LENGTH = "must be 12 to 128 characters"
USERNAME_RULE = "must be 3 to 150 characters of letters, digits and _ . @ + -"
WRONG_CURRENT_PASSWORD = "is not the current password"
GRANT_TYPE = "must be password"
LOGIN_FAILURE_LIMIT = 5  # failed sign-ins per username in the window, then 429
LOGIN_WINDOW_SECONDS = 15 * 60
USER_KEYS = {"id", "username", "is_admin", "created_at"}
TOKEN_KEYS = {"access_token", "token_type", "expires_in"}


ITEM_KEYS = {"id", "name", "description", "quantity", "created_at", "updated_at"}
# With needs_auth an item also carries its read-only owner (last); `assert_item` takes either.
OWNED_ITEM_KEYS = ITEM_KEYS | {"owner_id"}
PAGE_KEYS = {"items", "total", "limit", "offset"}
MAX_ID = 2147483647
MAX_OFFSET = MAX_ID  # no item lies beyond the largest id
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")
VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]{1,128}$")


def describe(r: httpx.Response) -> str:
    """A response, for assertion messages: request line, status, headers, body."""
    req = r.request
    body = r.text if len(r.content) <= 3000 else r.text[:3000] + "...(truncated)"
    headers = "\n".join(f"  {k}: {v}" for k, v in r.headers.items())
    return f"\n{req.method} {req.url}\n-> {r.status_code}\n{headers}\n{body}"


def uniq(prefix: str = "item") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def media_type(r: httpx.Response) -> str:
    return r.headers.get("content-type", "").split(";")[0].strip().lower()


def check_common(r: httpx.Response) -> None:
    """Headers every response carries (docs/CONTRACT.md section 5), and never HTML."""
    assert r.headers.get("x-content-type-options") == "nosniff", (
        "missing X-Content-Type-Options: nosniff" + describe(r)
    )
    rid = r.headers.get("x-request-id")
    assert rid and VISIBLE_ASCII.match(rid), "missing or malformed X-Request-ID" + describe(r)
    assert media_type(r) != "text/html", "an HTML page where JSON was due" + describe(r)


def sans_broker(body: Any) -> Any:
    """/ready's body without its `broker` check, which must be ok where there is one.

    Only a project with background jobs has it (test_jobs.py checks which do); the
    other suites start a Redis for such a project, so it is always up for them.
    """
    if isinstance(body, dict) and isinstance(body.get("checks"), dict):
        checks = dict(body["checks"])
        assert checks.pop("broker", "ok") == "ok", f"the broker check failed: {body}"
        return {**body, "checks": checks}
    return body


def assert_json(r: httpx.Response, status: int) -> Any:
    """A successful JSON response with this status; returns the body."""
    assert r.status_code == status, f"expected {status}" + describe(r)
    assert media_type(r) == "application/json", "expected application/json" + describe(r)
    check_common(r)
    return r.json()


def field_count_detail(n: int) -> str:
    return "1 field is invalid" if n == 1 else f"{n} fields are invalid"


def assert_problem(
    r: httpx.Response,
    status: int,
    fields: set[str] | None = None,
    messages: dict[str, str] | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """An RFC 9457 problem of this status, with its exact title and detail (`DETAILS[status]`
    unless `detail` is given; a 400 must say which), and for 422 exactly these fields."""
    assert r.status_code == status, f"expected {status}" + describe(r)
    assert media_type(r) == "application/problem+json", (
        "expected Content-Type: application/problem+json" + describe(r)
    )
    check_common(r)
    try:
        body = r.json()
    except json.JSONDecodeError:
        raise AssertionError("problem body is not JSON" + describe(r)) from None
    assert isinstance(body, dict), "problem body is not an object" + describe(r)
    assert body.get("type") == "about:blank", "type must be about:blank" + describe(r)
    assert body.get("title") == TITLES[status], f"title must be {TITLES[status]!r}" + describe(r)
    assert body.get("status") == status and type(body.get("status")) is int, (
        "status member must be the integer status" + describe(r)
    )
    expected = detail if detail is not None else DETAILS.get(status)
    assert status in {400, 422} or expected is not None, f"no expected detail for {status}"
    assert status != 400 or detail is not None, "a 400 check must name the expected detail"
    detail = body.get("detail")
    assert isinstance(detail, str) and detail.strip(), "detail must be a sentence" + describe(r)
    if expected is not None:
        assert detail == expected, f"detail must be {expected!r}" + describe(r)
    if status == 422:
        errors = body.get("errors")
        assert isinstance(errors, list) and errors, "422 needs a non-empty errors list" + describe(
            r
        )
        seen: list[str] = []
        for e in errors:
            assert isinstance(e, dict), "errors entries are objects" + describe(r)
            assert isinstance(e.get("field"), str) and e["field"], "entry needs field" + describe(r)
            msg = e.get("message")
            assert isinstance(msg, str) and msg.strip(), "entry needs a message" + describe(r)
            seen.append(e["field"])
        assert len(seen) == len(set(seen)), "one errors entry per bad field" + describe(r)
        assert detail == field_count_detail(len(seen)), (
            f"detail must be {field_count_detail(len(seen))!r}" + describe(r)
        )
        if fields is not None:
            assert set(seen) == set(fields), (
                f"errors must name exactly {sorted(fields)}" + describe(r)
            )
        for field, message in (messages or {}).items():
            got = {e["field"]: e["message"] for e in errors}.get(field)
            assert got == message, f"message for {field!r} must be {message!r}" + describe(r)
    return body


def parse_ts(value: str) -> datetime:
    assert isinstance(value, str) and RFC3339_UTC.match(value), (
        f"{value!r} is not an RFC 3339 UTC timestamp (Z or +00:00)"
    )
    return datetime.fromisoformat(value)  # 3.11 reads both "Z" and "+00:00"


def assert_item(body: Any, **expected: Any) -> dict[str, Any]:
    """An item object with exactly the contract's fields, well typed."""
    assert isinstance(body, dict), f"item must be an object: {body!r}"
    keys = OWNED_ITEM_KEYS if "owner_id" in body else ITEM_KEYS
    assert set(body) == keys, f"item fields must be {sorted(keys)}: {body!r}"
    if "owner_id" in body:
        owner = body["owner_id"]
        assert owner is None or (type(owner) is int and owner >= 1), f"bad owner_id: {body!r}"
        assert list(body)[-1] == "owner_id", f"owner_id must be the last member: {body!r}"
    assert type(body["id"]) is int and 1 <= body["id"] <= MAX_ID, f"bad id: {body!r}"
    assert isinstance(body["name"], str), f"bad name: {body!r}"
    assert body["description"] is None or isinstance(body["description"], str), body
    assert type(body["quantity"]) is int, f"quantity must be an integer: {body!r}"
    now = datetime.now(UTC)
    for key in ("created_at", "updated_at"):
        ts = parse_ts(body[key])
        assert abs(now - ts) < timedelta(minutes=10), f"{key} is not close to now: {body!r}"
    for key, value in expected.items():
        assert body[key] == value, f"{key} must be {value!r}: {body!r}"
    return body


def create(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    """POST an item (name defaults to a unique one, quantity to 1) and check the 201."""
    payload = {"name": uniq(), "quantity": 1, **fields}
    r = api.post("/api/items", json=payload)
    body = assert_item(assert_json(r, 201))
    assert r.headers.get("location") == f"/api/items/{body['id']}", (
        "Location must be /api/items/{id}" + describe(r)
    )
    return body


# --------------------------------------------------------------------------- databases


@dataclass
class Database:
    kind: str  # sqlite | postgresql
    url: str
    sqlite_path: Path | None = None
    pg_name: str | None = None

    def _sqlite(self) -> sqlite3.Connection:
        assert self.sqlite_path is not None
        return sqlite3.connect(self.sqlite_path, timeout=30)

    def _columns(self) -> dict[str, set[str]]:
        """Every table of the database (the driver's own aside) and its columns."""
        tables: dict[str, set[str]] = {}
        if self.kind == "sqlite":
            with self._sqlite() as con:
                names = con.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                )
                for (table,) in names.fetchall():
                    tables[table] = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
            return tables
        out = self.psql(
            "SELECT table_name || ' ' || column_name FROM information_schema.columns "
            "WHERE table_schema='public'"
        )
        for line in out.splitlines():
            if line.strip():
                table, column = line.split()
                tables.setdefault(table, set()).add(column)
        return tables

    def items_table(self) -> str:
        """The table holding items: the one with both a name and a quantity column."""
        tables = self._columns()
        found = [t for t, columns in tables.items() if {"name", "quantity"} <= columns]
        assert len(found) == 1, f"expected one items table, found {found} in {sorted(tables)}"
        return found[0]

    def psql(self, sql: str) -> str:
        assert self.pg_name is not None
        return postgres.cluster().psql(sql, dbname=self.pg_name)

    # -- users (needs_auth), changed behind the API's back

    @staticmethod
    def users_table(framework: str) -> tuple[str, str]:
        """The users table and its admin flag column (DRF: Django's own user model)."""
        return ("auth_user", "is_staff") if framework == "drf" else ("users", "is_admin")

    def _tables_with(self, columns: set[str]) -> list[tuple[str, str]]:
        """(table, column) of every table with one of these columns."""
        return [(t, c) for t, have in self._columns().items() for c in sorted(have & columns)]

    def _run(self, statements: list[str]) -> None:
        """SQL statements in one transaction (integers only are interpolated by callers)."""
        if self.kind == "sqlite":
            con = self._sqlite()
            try:
                with con:
                    for sql in statements:
                        con.execute(sql)
            finally:
                con.close()
            return
        self.psql("BEGIN; " + "; ".join(statements) + "; COMMIT;")

    def delete_user(self, framework: str, user_id: int) -> None:
        """Delete a user row directly, with the rows that refer to it (its items, reports,
        Django's per-user rows), as an operator's SQL would."""
        table, _ = self.users_table(framework)
        user_id = int(user_id)
        refs = [(t, c) for t, c in self._tables_with({"owner_id", "user_id"}) if t != table]
        self._run(
            [f'DELETE FROM "{t}" WHERE "{c}" = {user_id}' for t, c in refs]
            + [f'DELETE FROM "{table}" WHERE id = {user_id}']
        )

    def set_user_active(self, framework: str, user_id: int, *, active: bool) -> None:
        table, _ = self.users_table(framework)
        value = "TRUE" if active else "FALSE"
        if self.kind == "sqlite":
            value = "1" if active else "0"
        self._run([f'UPDATE "{table}" SET is_active = {value} WHERE id = {int(user_id)}'])

    def break_for_500(self, item_id: int) -> str:
        """Make the next read of items fail with a non-connection error; returns the path to GET.

        PostgreSQL: drop the items table (UndefinedTable, a ProgrammingError).
        SQLite: an undefined table is an OperationalError there, which the contract
        maps to 503, so instead store values no item can have (text in quantity and
        in created_at) in one row, past the CHECK constraints; reading that row fails
        in the app, not the database.
        """
        table = self.items_table()
        if self.kind == "postgresql":
            self.psql(f'DROP TABLE "{table}" CASCADE')
            return "/api/items"
        with self._sqlite() as con:
            # Past the database's own checks of the item rules, which refuse such a row.
            con.execute("PRAGMA ignore_check_constraints = ON")
            con.execute(
                f"UPDATE \"{table}\" SET quantity='not-a-number', created_at='not-a-timestamp' "
                "WHERE id=?",
                (item_id,),
            )
        return f"/api/items/{item_id}"


def new_database(kind: str, scratch: Path) -> Database:
    if kind == "sqlite":
        path = scratch / f"{uuid.uuid4().hex[:8]}.db"
        return Database(kind, f"sqlite:///{path}", sqlite_path=path)
    cluster = postgres.cluster()
    url = cluster.create_database()
    return Database(kind, url, pg_name=url.rsplit("/", 1)[1])


# --------------------------------------------------------------------------- request logs

_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def request_log_entries(log: str, request_id: str) -> list[dict[str, Any]]:
    """The request log lines carrying ``request_id``: JSON objects, or key=value text."""
    entries: list[dict[str, Any]] = []
    for line in log.splitlines():
        if request_id not in line:
            continue
        start = line.find("{")
        entry: dict[str, Any] | None = None
        if start >= 0:
            try:
                parsed = json.loads(line[start:])
                if isinstance(parsed, dict):
                    entry = parsed
            except json.JSONDecodeError:
                entry = None
        if entry is None:
            entry = {k: v.strip('"') for k, v in _KV.findall(line)}
            entry["_text"] = True
        if entry.get("request_id") == request_id and "status" in entry:
            entry["_line"] = line
            entries.append(entry)
    return entries


def wait_for_log(read: Any, ok: Any, timeout: float = 5.0) -> str:
    """Poll ``read()`` until ``ok(text)`` holds or the timeout passes; returns the text."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        text = read()
        if ok(text) or time.monotonic() > deadline:
            return str(text)
        time.sleep(0.1)
