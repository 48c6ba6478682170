"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

import bottle

from ..db import Database
from ..migrations_state import PENDING, MigrationState


def register(app: bottle.Bottle) -> None:
    """Add /health and /ready to ``app``."""
    app.route("/health", "GET", health)
    app.route("/ready", "GET", ready)


def health() -> dict[str, Any]:
    """Liveness: the process answers; touches no database."""
    return {"status": "ok"}


def ready(database: Database, migrations: MigrationState) -> dict[str, Any]:
    """Readiness: the database answers a trivial query, and every migration is applied."""
    try:
        database.ping()
        current = migrations.is_current()
    except Exception as exc:  # whatever fails, the probe says which class, never the message
        bottle.response.status = 503
        return {"status": "unavailable", "checks": {"database": type(exc).__name__}}
    if not current:
        bottle.response.status = 503
        return {"status": "unavailable", "checks": {"database": PENDING}}
    return {"status": "ok", "checks": {"database": "ok"}}
