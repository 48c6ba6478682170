"""Whether the database schema is at the newest migration (`make migrate` has run).

Until it is, `/ready` answers 503 and every `/api/` request a 503 problem that names
the fix, instead of failing on a missing table. Once the schema is up to date, this
process never checks again, so requests pay nothing for it.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from rest_framework import exceptions

from .problems import MIGRATIONS_PENDING

# The readiness check's value while migrations are pending.
PENDING = "migrations pending"


class MigrationsPending(exceptions.APIException):
    """The schema is behind the migrations: 503 until `make migrate` has run."""

    status_code = 503
    default_detail = MIGRATIONS_PENDING
    default_code = "migrations_pending"


class MigrationState:
    """Compares the database's applied migrations with the migration files."""

    def __init__(self, alias: str = DEFAULT_DB_ALIAS) -> None:
        self._alias = alias
        self.current = False  # once True, never checked again

    def is_current(self) -> bool:
        """Whether every migration is applied; raises when the database cannot be reached."""
        if not self.current:
            executor = MigrationExecutor(connections[self._alias])
            self.current = not executor.migration_plan(executor.loader.graph.leaf_nodes())
        return self.current

    def require_current(self) -> None:
        """Raise `MigrationsPending` unless every migration is applied."""
        if not self.is_current():
            raise MigrationsPending


migrations = MigrationState()
