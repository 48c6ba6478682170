"""The framework-free floor's data path: the starter's list query and its JSON envelope.

One connection per process to ``DATABASE_URL`` (SQLite through ``sqlite3``, PostgreSQL
through ``psycopg``, which the PostgreSQL starters install), the starter's two
statements (one page in ``id`` order, the count), the document the starter sends: keys
in the starter's order, timestamps in UTC with a ``Z``, compact JSON. The benchmark
checks that it is the starter's document before it measures.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

# Django names the table after its app and model.
TABLE = os.environ.get("FLOOR_ITEMS_TABLE", "items")
PAGE = (
    "SELECT id, name, description, quantity, created_at, updated_at "
    f"FROM {TABLE} ORDER BY id LIMIT {{limit}} OFFSET {{offset}}"
)
COUNT = f"SELECT COUNT(*) FROM {TABLE}"
COLUMNS = ("id", "name", "description", "quantity", "created_at", "updated_at")
_connection: Any = None


def _connect() -> Any:
    url = os.environ["DATABASE_URL"]
    scheme, _, rest = url.partition("://")
    if scheme.startswith("sqlite"):
        import sqlite3

        # sqlite:///relative.db, sqlite:////absolute.db: the path follows the third slash.
        return sqlite3.connect(rest[1:], check_same_thread=False)
    import psycopg

    return psycopg.connect("postgresql://" + rest, autocommit=True)


def _timestamp(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))


def page(query_string: str) -> bytes:
    """The body of ``GET /api/items?<query_string>``."""
    global _connection
    if _connection is None:
        _connection = _connect()
    query = parse_qs(query_string)
    limit = int(query.get("limit", ["20"])[0])
    offset = int(query.get("offset", ["0"])[0])
    cursor = _connection.cursor()
    cursor.execute(PAGE.format(limit=limit, offset=offset))
    rows = cursor.fetchall()
    cursor.execute(COUNT)
    (total,) = cursor.fetchone()
    items = []
    for row in rows:
        item = dict(zip(COLUMNS, row, strict=True))
        item["created_at"] = _timestamp(item["created_at"])
        item["updated_at"] = _timestamp(item["updated_at"])
        items.append(item)
    envelope = {"items": items, "total": total, "limit": limit, "offset": offset}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
