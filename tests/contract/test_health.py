"""GET /health and GET /ready (docs/CONTRACT.md section 3), also with the database unreachable."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import harness
import httpx
import postgres
from matrix import Variant

from contract.helpers import (
    MIGRATIONS_PENDING,
    Database,
    assert_json,
    assert_problem,
    check_common,
    describe,
    media_type,
    sans_broker,
)


def test_health(api: httpx.Client) -> None:
    assert assert_json(api.get("/health"), 200) == {"status": "ok"}


def test_ready(api: httpx.Client) -> None:
    body = assert_json(api.get("/ready"), 200)
    assert sans_broker(body) == {"status": "ok", "checks": {"database": "ok"}}


def _unreachable_url(variant: Variant, tmp_path: Path) -> tuple[str, str]:
    """A DATABASE_URL the server cannot open, and a secret that appears in it."""
    if variant.database == "postgresql":
        secret = "Unreachable-pw-91"
        port = harness.closed_port()
        return f"postgresql://{postgres.ROLE}:{secret}@127.0.0.1:{port}/nowhere", secret
    # A file in a directory that does not exist: SQLite cannot create it.
    missing = tmp_path / "no-such-dir" / "deeper" / "app.db"
    return f"sqlite:///{missing}", "no-such-dir"


def test_database_unreachable(
    variant: Variant, start_server: Callable[..., harness.Server], tmp_path: Path
) -> None:
    """/health still 200; /ready 503 naming the error class; the API 503 problems."""
    url, secret = _unreachable_url(variant, tmp_path)
    srv = start_server(database_url=url, migrate=False, name="unreachable")
    with srv.client() as api:
        assert assert_json(api.get("/health"), 200) == {"status": "ok"}

        r = api.get("/ready")
        assert r.status_code == 503, describe(r)
        check_common(r)
        # The contract gives /ready its own body, not a problem document.
        assert media_type(r) in {"application/json", "application/problem+json"}, describe(r)
        body = sans_broker(r.json())
        assert set(body) == {"status", "checks"}, describe(r)
        assert body["status"] == "unavailable", describe(r)
        assert set(body["checks"]) == {"database"}, describe(r)
        reason = body["checks"]["database"]
        # templates/README.md: the exception's class name, never its message.
        assert isinstance(reason, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,99}", reason), (
            "the reason must be the exception's class name" + describe(r)
        )
        assert reason != "ok", describe(r)
        for r in (
            api.get("/api/items"),
            api.get("/api/items/1"),
            api.post("/api/items", json={"name": "x", "quantity": 1}),
            api.get("/ready"),
        ):
            assert secret not in r.text, "the database URL leaked into a response" + describe(r)
        assert_problem(api.get("/api/items"), 503)
        assert_problem(api.get("/api/items/1"), 503)
        assert_problem(api.post("/api/items", json={"name": "x", "quantity": 1}), 503)


def test_migrations_pending(
    variant: Variant,
    project: Path,
    start_server: Callable[..., harness.Server],
    databases: Callable[[], Database],
) -> None:
    """A server on an unmigrated database: /ready 503 "migrations pending" and the API 503
    problems naming the fix, not 500s; once `make migrate` has run, both work (no restart)."""
    db = databases()
    srv = start_server(database=db, migrate=False, name="unmigrated")
    with srv.client() as api:
        assert assert_json(api.get("/health"), 200) == {"status": "ok"}
        r = api.get("/ready")
        assert r.status_code == 503, describe(r)
        check_common(r)
        assert sans_broker(r.json()) == {
            "status": "unavailable",
            "checks": {"database": "migrations pending"},
        }
        for r in (
            api.get("/api/items"),
            api.get("/api/items/1"),
            api.post("/api/items", json={"name": "x", "quantity": 1}),
        ):
            assert_problem(r, 503, detail=MIGRATIONS_PENDING)

        harness.make(project, "migrate", env=srv.env, timeout=300)
        if srv.auth:
            srv.user()  # now that there is a users table: the API's requests are its
        # Each worker checks again until it has seen the schema up to date: ask a few times.
        for _ in range(4):
            assert sans_broker(assert_json(api.get("/ready"), 200)) == {
                "status": "ok",
                "checks": {"database": "ok"},
            }
            assert assert_json(api.get("/api/items"), 200)["total"] == 0
        created = assert_json(api.post("/api/items", json={"name": "x", "quantity": 1}), 201)
        assert assert_json(api.get(f"/api/items/{created['id']}"), 200)["name"] == "x"
