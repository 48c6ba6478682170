"""The database's own last line behind the API (docs/CONTRACT.md section 3, "The item").

The item rules hold for rows written around the application too (a SQL console, a
script): the database refuses them with its CHECK constraints, named the same in every
starter. And an id is never handed out twice, not even the newest one after its delete.
"""

from __future__ import annotations

import sqlite3

import harness
import httpx
import pytest

from contract.helpers import Database, assert_json, create

# What each database says when a row breaks a rule. PostgreSQL's `varchar(N)` refuses an
# overlong text before the CHECK constraint sees it; SQLite has only the constraint.
REFUSALS = {
    "sqlite": {
        "quantity": "CHECK constraint failed: ck_items_quantity_range",
        "blank": "CHECK constraint failed: ck_items_name_not_blank",
        "name_length": "CHECK constraint failed: ck_items_name_length",
        "description_length": "CHECK constraint failed: ck_items_description_length",
    },
    "postgresql": {
        "quantity": 'violates check constraint "ck_items_quantity_range"',
        "blank": 'violates check constraint "ck_items_name_not_blank"',
        "name_length": "value too long for type character varying(200)",
        "description_length": "value too long for type character varying(2000)",
    },
}
# (rule, name, description, quantity): each row breaks one rule.
INVALID_ROWS = [
    ("quantity", "below-zero", None, -1),
    ("quantity", "above-a-million", None, 1_000_001),
    ("blank", "", None, 1),
    ("blank", " \t\n\r\f\v ", None, 1),
    ("name_length", "n" * 201, None, 1),
    ("description_length", "too-long-description", "d" * 2001, 1),
]

# Text as a PostgreSQL escape string (E'...'), for psql (which has no \v escape).
PG_ESCAPES = str.maketrans(
    {"\\": "\\\\", "'": "''", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\v": "\\x0b"}
)


def _insert(db: Database, name: str, description: str | None, quantity: int) -> str | None:
    """Insert one row straight into the items table, bypassing the application; then undo
    it. Returns the database's error, or None when it took the row."""
    table = db.items_table()
    if db.kind == "sqlite":
        con = sqlite3.connect(db.sqlite_path or "", timeout=30)
        try:
            con.execute(
                f'INSERT INTO "{table}" (name, description, quantity, created_at, updated_at) '
                "VALUES (?, ?, ?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                (name, description, quantity),
            )
        except sqlite3.IntegrityError as exc:
            return str(exc)
        finally:
            con.rollback()
            con.close()
        return None

    def literal(text: str | None) -> str:
        return "NULL" if text is None else f"E'{text.translate(PG_ESCAPES)}'"

    sql = (
        f'BEGIN; INSERT INTO "{table}" (name, description, quantity, created_at, updated_at) '
        f"VALUES ({literal(name)}, {literal(description)}, {quantity}, now(), now()); ROLLBACK;"
    )
    try:
        db.psql(sql)
    except RuntimeError as exc:
        return str(exc)
    return None


def test_the_database_refuses_rows_that_break_the_item_rules(
    server: harness.Server, main_db: Database
) -> None:
    assert _insert(main_db, "a-valid-row", "fine", 1_000_000) is None, "a valid row was refused"
    refusals = REFUSALS[main_db.kind]
    for rule, name, description, quantity in INVALID_ROWS:
        error = _insert(main_db, name, description, quantity)
        assert error is not None, f"the database stored a row breaking {rule}: {name!r}"
        assert refusals[rule] in error, f"{rule}: expected {refusals[rule]!r}, got {error!r}"


@pytest.mark.parametrize("deletes", [1, 2])
def test_ids_are_never_reused(api: httpx.Client, deletes: int) -> None:
    """Deleting the newest items does not free their ids for the next item."""
    items = [create(api) for _ in range(deletes)]
    for item in items:
        assert api.delete(f"/api/items/{item['id']}").status_code == 204
    newest = max(item["id"] for item in items)
    after = create(api)
    assert after["id"] > newest, f"id {after['id']} was used again (the deleted newest: {newest})"
    assert_json(api.get(f"/api/items/{after['id']}"), 200)
