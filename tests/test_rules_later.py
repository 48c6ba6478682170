"""An existing project gets the database's item rules and ids that are never reused
through ``copier update`` and ``make migrate`` (issues 20 and 21).

A team made its project before the database checked the item rules (the template's
last commit without revision 0003), migrated it and stored items, and one row was
written around the application with a quantity the API refuses. After ``copier
update``, ``make migrate`` stops with a message naming that row's id and the rule it
breaks, and changes nothing; once the row is fixed, it adds the rules: a row that
breaks them, written straight into the database, is refused; the items stored before
are served unchanged; and the id of a deleted newest item is not handed out again.

Default run: an Alembic starter on SQLite (the table is rebuilt there); ``--full-matrix``
runs every framework on both databases.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import harness
import pytest
import update_history as uh
from contract.helpers import Database, assert_json, create, new_database
from contract.test_integrity import INVALID_ROWS, REFUSALS, _insert
from matrix import AVAILABLE, Variant

pytestmark = pytest.mark.slow

# The revision that brought the rules; a project made before it starts one commit earlier.
RULES_MIGRATION = "templates/_shared/migrations/versions/0003_check_item_rules.py.jinja"
OLD_VERSION = "v0.9.0"
BROKEN_RULE = "quantity must be an integer between 0 and 1000000"


def _cases(full: bool) -> list[tuple[str, str]]:
    if full:
        return [(fw, db) for fw in AVAILABLE for db in ("sqlite", "postgresql")]
    # The riskiest path: an Alembic starter rebuilding a SQLite table that holds rows.
    return [c for c in [("fastapi", "sqlite")] if c[0] in AVAILABLE]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        full = bool(metafunc.config.getoption("--full-matrix", default=False))
        metafunc.parametrize(
            "case",
            [
                pytest.param(c, id=f"{c[0]}-{c[1]}", marks=pytest.mark.xdist_group(f"rules-{c[0]}"))
                for c in _cases(full)
            ],
        )


def _before_the_rules() -> str:
    added = uh.git(
        uh.TEMPLATE_ROOT, "log", "--diff-filter=A", "--format=%H", "--", RULES_MIGRATION
    ).split()
    assert added, f"no commit added {RULES_MIGRATION} (a shallow clone?)"
    return f"{added[-1]}^"


def _write_around_the_app(db: Database, sql: str) -> None:
    """Run SQL on the project's database directly, as a SQL console does."""
    if db.kind == "sqlite":
        with sqlite3.connect(db.sqlite_path or "", timeout=30) as con:
            con.execute(sql)
        return
    db.psql(sql)


def test_an_updated_project_gets_the_rules(
    case: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    framework, database = case
    if database == "postgresql":
        request.getfixturevalue("pg_cluster")
    template = uh.template_snapshot(tmp_path / "t", (_before_the_rules(), OLD_VERSION))
    project = uh.generate(
        template, Variant(framework, database=database), tmp_path / "contract-api", OLD_VERSION
    )
    db = new_database(database, tmp_path)
    env: dict[str, str | None] = {"DATABASE_URL": db.url}

    uh.install_and_migrate(project, db.url)
    with (
        harness.Server(
            project, database_url=db.url, log_path=tmp_path / "before.log", migrate=False
        ) as srv,
        srv.client() as api,
    ):
        kept = [create(api, name=f"kept-{n}-{secrets.token_hex(3)}") for n in (1, 2)]
        broken = create(api, name="broken")
    table = db.items_table()
    _write_around_the_app(db, f'UPDATE "{table}" SET quantity = -3 WHERE id = {broken["id"]}')

    uh.update(project, vcs_ref="v1.0.0")
    assert not uh.conflict_markers(project), uh.git(project, "status", "--porcelain")
    uh.commit(project, "Update from the template")
    harness.make(project, "install")

    refused = harness.run(["make", "migrate"], cwd=project, env=env)
    assert refused.returncode != 0, f"make migrate took a row breaking a rule:\n{refused.stdout}"
    expected = (
        "some items break the rules the database is to check; fix or delete them, then run "
        f"make migrate again: {BROKEN_RULE} (item ids {broken['id']})"
    )
    assert expected in refused.stdout, refused.stdout
    assert "Traceback" not in refused.stdout, refused.stdout

    _write_around_the_app(db, f'UPDATE "{table}" SET quantity = 3 WHERE id = {broken["id"]}')
    harness.make(project, "migrate", env=env)
    for rule, name, description, quantity in INVALID_ROWS:
        error = _insert(db, name, description, quantity)
        assert error is not None, f"the database stored a row breaking {rule}: {name!r}"
        assert REFUSALS[database][rule] in error, error

    with (
        harness.Server(
            project, database_url=db.url, log_path=tmp_path / "after.log", migrate=False
        ) as srv,
        srv.client() as api,
    ):
        for item in kept:
            assert assert_json(api.get(f"/api/items/{item['id']}"), 200) == item
        newest = create(api)
        assert api.delete(f"/api/items/{newest['id']}").status_code == 204
        after = create(api)
        assert after["id"] > newest["id"], f"id {newest['id']} was handed out again"
