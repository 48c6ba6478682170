"""The frameworks the template offers and their valid option combinations.

The frameworks, their availability and what rules each one out come from the
template's one list, ``hooks/frameworks.jinja`` (the table copier.yml builds the
``framework`` question from); docs/QUESTIONS.md section 2 states the rules:

- ``needs_admin`` only with ``use_orm``;
- ``needs_async`` not with ``drf``, ``bottle`` or ``pyramid``;
- ``needs_admin`` not with ``bottle`` or ``pyramid``;
- ``drf`` requires ``use_orm``;
- ``kubernetes`` only with ``database="postgresql"`` (several instances share one database).

``all_variants`` lists every valid combination; ``sample_variants`` a small covering
sample, used unless pytest runs with ``--full-matrix``.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent


def framework_table() -> list[dict[str, Any]]:
    """The rows of ``hooks/frameworks.jinja``: value, label, available and the reasons."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_ROOT))
    source = '{% from "hooks/frameworks.jinja" import frameworks %}{{ frameworks | tojson }}'
    return list(json.loads(env.from_string(source).render()))


TABLE = framework_table()
FRAMEWORKS = tuple(row["value"] for row in TABLE)
LABELS = {row["value"]: row["label"] for row in TABLE}
# A framework joins the suite once hooks/frameworks.jinja marks it available.
AVAILABLE = tuple(row["value"] for row in TABLE if row["available"])

DATABASES = ("sqlite", "postgresql")

ASYNC_CAPABLE = frozenset(row["value"] for row in TABLE if not row["async"])
ADMIN_CAPABLE = frozenset(row["value"] for row in TABLE if not row["admin"])
ORM_REQUIRED = frozenset(row["value"] for row in TABLE if row["no_orm"])

# Fixed project answers: every variant renders the same project identity.
PROJECT_ANSWERS: dict[str, Any] = {
    "project_name": "Contract API",
    "project_slug": "contract-api",
    "package_name": "contract_api",
    "description": "A project rendered by the template's contract suite",
    "author_name": "Contract Suite",
    "author_email": "contract@example.com",
    "python_version": "3.11",
    "project_size": "small",
}


@dataclass(frozen=True)
class Variant:
    """One rendered project: a framework and its option answers."""

    framework: str
    needs_async: bool = False
    use_orm: bool = True
    needs_admin: bool = False
    database: str = "sqlite"
    needs_auth: bool = True
    observability: bool = True
    background_jobs: bool = False
    kubernetes: bool = False

    def __post_init__(self) -> None:
        problem = invalid_reason(self)
        if problem:
            raise ValueError(f"invalid variant {self!r}: {problem}")

    @property
    def id(self) -> str:
        parts = [
            self.framework,
            "async" if self.needs_async else "sync",
            "orm" if self.use_orm else "sql",
        ]
        if self.needs_admin:
            parts.append("admin")
        if not self.observability:
            parts.append("unobserved")
        if not self.needs_auth:
            parts.append("open")
        if self.background_jobs:
            parts.append("jobs")
        if self.kubernetes:
            parts.append("k8s")
        parts.append(self.database)
        return "-".join(parts)

    @property
    def package_name(self) -> str:
        return str(PROJECT_ANSWERS["package_name"])

    @property
    def answers(self) -> dict[str, Any]:
        """The data passed to copier (without ``available_frameworks``)."""
        data = dict(PROJECT_ANSWERS)
        data.update(
            framework=self.framework,
            needs_async=self.needs_async,
            use_orm=self.use_orm,
            database=self.database,
            needs_auth=self.needs_auth,
            observability=self.observability,
            background_jobs=self.background_jobs,
        )
        # needs_admin is only asked when use_orm; passing it otherwise would be
        # an answer to a question the user never sees.
        if self.use_orm:
            data["needs_admin"] = self.needs_admin
        # kubernetes likewise, only with PostgreSQL.
        if self.database == "postgresql":
            data["kubernetes"] = self.kubernetes
        return data

    def __str__(self) -> str:
        return self.id


def invalid_reason(v: Variant) -> str | None:
    """Why a combination is invalid (docs/QUESTIONS.md section 2), or None when it is valid."""
    if v.framework not in FRAMEWORKS:
        return f"unknown framework {v.framework!r}"
    if v.database not in DATABASES:
        return f"unknown database {v.database!r}"
    if v.needs_admin and not v.use_orm:
        return "needs_admin requires use_orm"
    if v.needs_async and v.framework not in ASYNC_CAPABLE:
        return f"{v.framework} cannot be async"
    if v.needs_admin and v.framework not in ADMIN_CAPABLE:
        return f"{v.framework} has no admin"
    if not v.use_orm and v.framework in ORM_REQUIRED:
        return f"{v.framework} requires use_orm"
    if v.kubernetes and v.database != "postgresql":
        return "kubernetes requires database=postgresql"
    return None


def default_variant(framework: str) -> Variant:
    """The variant a user gets by accepting every default (copier.yml defaults)."""
    return Variant(framework)


def all_variants(framework: str) -> list[Variant]:
    """Every valid option combination of one framework, the default first."""
    variants = [default_variant(framework)]
    for answers in itertools.product(
        (False, True),  # needs_async
        (True, False),  # use_orm
        (False, True),  # needs_admin
        DATABASES,
        (True, False),  # needs_auth
        (True, False),  # observability
        (False, True),  # background_jobs
        (False, True),  # kubernetes
    ):
        try:
            v = Variant(framework, *answers)
        except ValueError:
            continue
        if v not in variants:
            variants.append(v)
    return variants


def _coverage(v: Variant) -> set[tuple[str, Any]]:
    """What a variant exercises: every option value, and for the async-capable
    frameworks the data-layer pairs.

    Where a framework can be async, the pairs (use_orm x database, needs_async x
    use_orm, needs_async x database) decide which driver and code path serve the
    requests (SQLAlchemy or DB-API; sqlite3, aiosqlite, psycopg or asyncpg), so the
    sample covers them all. The sync-only frameworks share those paths with them, so
    each option value once is enough there (and keeps CI's default run short).
    """
    values = {
        ("needs_async", v.needs_async),
        ("use_orm", v.use_orm),
        ("needs_admin", v.needs_admin),
        ("database", v.database),
        ("needs_auth", v.needs_auth),
        ("observability", v.observability),
        ("background_jobs", v.background_jobs),
        ("kubernetes", v.kubernetes),
    }
    # Options that meet in code: a job's trace continues its request's.
    values.add(("observability&jobs", v.observability and v.background_jobs))
    # Users sign in to the admin, and own the reports their jobs compute.
    values.add(("auth&admin", v.needs_auth and v.needs_admin))
    values.add(("auth&jobs", v.needs_auth and v.background_jobs))
    if v.framework not in ASYNC_CAPABLE:
        return values
    pairs = {
        ("orm*db", (v.use_orm, v.database)),
        ("async*orm", (v.needs_async, v.use_orm)),
        ("async*db", (v.needs_async, v.database)),
    }
    return values | pairs


# Sync SQLAlchemy on PostgreSQL is the shared core's usual production path and the
# samples above leave it out; Pyramid's run of it also covers pyramid_tm there.
EXTRA_SAMPLE = {"pyramid": [Variant("pyramid", database="postgresql")]}


def sample_variants(framework: str) -> list[Variant]:
    """A small covering sample: the default variant, then greedy coverage.

    Every option value the framework allows appears at least once, both
    databases appear, and so do the data-layer pairs of ``_coverage``.
    """
    candidates = all_variants(framework)
    needed: set[tuple[str, Any]] = set().union(*(_coverage(v) for v in candidates))
    chosen = [candidates[0]]
    needed -= _coverage(candidates[0])
    while needed:
        best = max(candidates, key=lambda v: len(_coverage(v) & needed))
        chosen.append(best)
        needed -= _coverage(best)
    return chosen + [v for v in EXTRA_SAMPLE.get(framework, []) if v not in chosen]


def frameworks_under_test() -> tuple[str, ...]:
    """``AVAILABLE``, or the frameworks named in ``CONTRACT_FRAMEWORKS`` (comma-separated).

    ``CONTRACT_FRAMEWORKS=flask`` runs the suites on a framework that is still being
    built (not yet in ``AVAILABLE``): it is also passed to copier as available.
    """
    raw = os.environ.get("CONTRACT_FRAMEWORKS", "").strip()
    if not raw:
        return AVAILABLE
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in FRAMEWORKS]
    if unknown:
        raise ValueError(f"CONTRACT_FRAMEWORKS: unknown framework(s) {unknown}; use {FRAMEWORKS}")
    return names


def available_frameworks() -> list[str]:
    """What copier's ``available_frameworks`` gets: AVAILABLE plus those under test."""
    return list(dict.fromkeys([*AVAILABLE, *frameworks_under_test()]))


def selected_variants(
    full_matrix: bool, frameworks: tuple[str, ...] | None = None
) -> list[Variant]:
    """The variants a test run covers, framework by framework."""
    pick = all_variants if full_matrix else sample_variants
    return [v for fw in (frameworks or frameworks_under_test()) for v in pick(fw)]
