"""An option turned on in an existing, migrated project works (issue 14, item 1).

A team copies a starter, migrates its database, serves it and stores data; later it
turns an option on with ``copier update --defaults --data needs_admin=true``, then
runs ``make install``, ``make migrate`` and ``make createadmin`` as the README says.
The option must bring its tables as a migration of its own, so that ``make migrate``
adds them to the existing database: the admin UI then logs in over HTTP, and the
items stored before the update are still served.

The same for a project made when the admin table was still created by revision 0001
(v0.2.0): updating it to this version must migrate cleanly (revision 0002 finds the
table already there).

Default run: each framework with an admin once, the databases alternating, and one
project from v0.2.0; ``--full-matrix`` runs every framework on both databases. The same
for ``observability`` (off through ``--defaults`` on a project made before the question)
and ``background_jobs`` (a report over the items stored before the update, with a real
Redis and ``make worker``). And for ``needs_auth``: off through ``--defaults`` on a project
made before the question (still open), then turned on with its items and admin accounts
kept (fastapi and flask; every framework on both databases with ``--full-matrix``).
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import harness
import httpx
import pytest
import redis_server
import update_history as uh
import yaml
from contract.helpers import Database, assert_json, describe, new_database
from contract.test_admin import _follow, _get, _Jar, _login_form, create_admin, submit_login
from contract.test_jobs import Worker, _wait_done
from matrix import ADMIN_CAPABLE, AVAILABLE, Variant

pytestmark = pytest.mark.slow

# The admin table moved out of revision 0001 after this path last created it there.
FIRST_MIGRATION = "templates/_shared/migrations/versions/0001_create_items.py.jinja"
# Where a project made before the move starts: a commit of this repository.
OLD_VERSION = "v0.2.0"


@dataclass(frozen=True)
class Case:
    framework: str
    database: str
    # "without-admin": copied without the option, turned on by the update.
    # "from-0.2.0": copied with the admin at v0.2.0, updated to this version.
    start: str = "without-admin"

    @property
    def id(self) -> str:
        return f"{self.framework}-{self.database}-{self.start}"


def _server(project: Path, db: Database, log: Path, env: dict[str, str | None]) -> harness.Server:
    """The project's `make serve` on `db`, already migrated by the test."""
    return harness.Server(project, database_url=db.url, log_path=log, migrate=False, env=env)


def _cases(full: bool) -> list[Case]:
    frameworks = [fw for fw in AVAILABLE if fw in ADMIN_CAPABLE]
    databases = ("sqlite", "postgresql")
    if full:
        cases = [Case(fw, db) for fw in frameworks for db in databases]
        # Django's own migrations never put the admin in revision 0001: Alembic only.
        cases += [
            Case(fw, db, "from-0.2.0") for fw in frameworks if fw != "drf" for db in databases
        ]
        return cases
    cases = [Case(fw, databases[i % 2]) for i, fw in enumerate(frameworks)]
    return [*cases, Case(frameworks[0], databases[1], "from-0.2.0")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "observed_framework" in metafunc.fixturenames:
        _parametrize_observability(metafunc)
    if "jobs_case" in metafunc.fixturenames:
        _parametrize_jobs(metafunc)
    if "auth_case" in metafunc.fixturenames:
        _parametrize_auth(metafunc)
    if "case" in metafunc.fixturenames:
        full = bool(metafunc.config.getoption("--full-matrix", default=False))
        metafunc.parametrize(
            "case",
            [
                pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(f"later-{c.id}"))
                for c in _cases(full)
            ],
        )


def _old_commit() -> str:
    """The last commit whose revision 0001 still created the admin table."""
    moved = uh.git(
        uh.TEMPLATE_ROOT, "log", "-1", "--format=%H", "-S", '"admin_users"', "--", FIRST_MIGRATION
    ).strip()
    assert moved, f"no commit removed the admin table from {FIRST_MIGRATION} (a shallow clone?)"
    return f"{moved}^"


def _template(base: Path, from_old: bool) -> Path:
    """The template as a repository (v1.0.0); first the tree of v0.2.0 when asked."""
    return uh.template_snapshot(base, (_old_commit(), OLD_VERSION) if from_old else None)


def _clean(project: Path) -> None:
    status = uh.git(project, "status", "--porcelain", "--untracked-files=all")
    assert not status, f"copier update needs a clean tree; git status:\n{status}"


def _log_in(api: httpx.Client, base_url: str, username: str, password: str) -> None:
    """Log in to /admin/ through its login form, as a browser does."""
    jar = _Jar()
    r = _get(api, jar, "/admin/")
    if r.status_code in (301, 302, 303, 307, 308):
        r = _follow(api, jar, base_url, r)  # /admin/ may open on a model's page first
        login_url = str(r.url)
        assert urlsplit(login_url).netloc == urlsplit(base_url).netloc, describe(r)
    else:
        login_url = f"{base_url}/admin/"
    assert r.status_code == 200, "the login page" + describe(r)
    form = _login_form(r.text)
    assert form, "no login form at /admin/" + describe(r)
    submit_login(api, jar, base_url, login_url, form, username, password)


def test_admin_turned_on_later(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if case.database == "postgresql":
        request.getfixturevalue("pg_cluster")
    from_old = case.start == "from-0.2.0"
    template = _template(tmp_path / "t", from_old)
    # Open (no users and tokens): the admin's own account table, revision 0002, is the point
    # here; with needs_auth the admin signs in users (test_auth_stays_off_on_update...).
    variant = Variant(
        case.framework, database=case.database, needs_admin=from_old, needs_auth=False
    )
    project = uh.generate(
        template, variant, tmp_path / "contract-api", vcs_ref=OLD_VERSION if from_old else "v1.0.0"
    )
    db = new_database(case.database, tmp_path)
    env: dict[str, str | None] = {"DATABASE_URL": db.url}

    uh.install_and_migrate(project, db.url)
    names = [f"before-{n}-{secrets.token_hex(3)}" for n in (1, 2)]
    with (
        harness.Server(
            project, database_url=db.url, log_path=tmp_path / "before.log", migrate=False
        ) as srv,
        srv.client() as api,
    ):
        ids = [
            assert_json(api.post("/api/items", json={"name": n, "quantity": 3}), 201)["id"]
            for n in names
        ]
    _clean(project)

    uh.update(project, vcs_ref="v1.0.0", data={} if from_old else {"needs_admin": True})
    assert not uh.conflict_markers(project), uh.git(project, "status", "--porcelain")
    uh.commit(project, "Update from the template")

    harness.make(project, "install")
    harness.make(project, "migrate", env=env)
    with harness.Server(
        project, database_url=db.url, log_path=tmp_path / "after.log", migrate=False
    ) as srv:
        username, password = create_admin(project, db.url, srv.env["SECRET_KEY"])
        with srv.client(follow_redirects=False) as api:
            _log_in(api, srv.base_url, username, password)
            assert assert_json(api.get("/ready"), 200)["status"] == "ok"
            for item_id, name in zip(ids, names, strict=True):
                assert assert_json(api.get(f"/api/items/{item_id}"), 200)["name"] == name


# --------------------------------------------------------------------------- observability
#
# A project made before the `observability` question existed keeps its behaviour through
# `copier update --defaults` (no --trust): the question defaults to false for it
# (hooks/update.jinja, new_option_default). `--data observability=true` then turns it on,
# and after `make install` the served project answers /metrics.


def _before_question(key: str) -> str:
    """The last commit of this repository whose copier.yml did not ask `key`."""
    added = uh.git(
        uh.TEMPLATE_ROOT, "log", "--reverse", "--format=%H", "-S", f"\n{key}:", "--",
        "copier.yml",
    ).split()  # fmt: skip
    assert added, f"no commit added the {key} question to copier.yml (a shallow clone?)"
    return f"{added[0]}^"


def _observability_frameworks(full: bool) -> list[str]:
    return list(AVAILABLE) if full else list(AVAILABLE[:1])


def _parametrize_observability(metafunc: pytest.Metafunc) -> None:
    full = bool(metafunc.config.getoption("--full-matrix", default=False))
    metafunc.parametrize(
        "observed_framework",
        [
            pytest.param(fw, id=fw, marks=pytest.mark.xdist_group(f"later-observability-{fw}"))
            for fw in _observability_frameworks(full)
        ],
    )


def test_observability_stays_off_on_update_and_turns_on_on_request(
    observed_framework: str, tmp_path: Path
) -> None:
    template = uh.template_snapshot(tmp_path / "t", (_before_question("observability"), "v0.9.0"))
    variant = Variant(observed_framework)
    project = uh.generate(template, variant, tmp_path / "contract-api", vcs_ref="v0.9.0")
    metrics_module = project / "src" / variant.package_name / "metrics.py"
    assert "observability" not in yaml.safe_load((project / ".copier-answers.yml").read_text())

    # `copier update --defaults`: the project does not gain the option.
    uh.update(project, vcs_ref="v1.0.0")
    assert not uh.conflict_markers(project), uh.git(project, "status", "--porcelain")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["observability"] is False, answers
    assert not metrics_module.exists()
    assert "prometheus-client" not in (project / "pyproject.toml").read_text()
    uh.commit(project, "Update from the template")

    # `--data observability=true`: it does, and it works once installed.
    uh.update(project, vcs_ref="v1.0.0", data={"observability": True})
    assert not uh.conflict_markers(project), uh.git(project, "status", "--porcelain")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["observability"] is True, answers
    assert metrics_module.exists()
    uh.commit(project, "Turn observability on")
    harness.make(project, "install")
    db = new_database("sqlite", tmp_path)
    with (
        harness.Server(project, database_url=db.url, log_path=tmp_path / "serve.log") as srv,
        srv.client() as api,
    ):
        assert_json(api.get("/api/items"), 200)
        r = api.get("/metrics")
        assert r.status_code == 200, describe(r)
        assert 'http_requests_total{method="GET",route="/api/items",status="200"} 1.0' in r.text


# --------------------------------------------------------------------------- background jobs
# A project copied without jobs (with users and tokens, a new project's default), migrated
# and holding a user's items, turns them on with `copier update --defaults --data
# background_jobs=true`, `make install` and `make migrate` (revision 0005 and the reports'
# owner 0007, or DRF's reports app, add the reports table to the existing database): with a
# Redis and `make worker`, the user's report counts the items stored before the update.


def _parametrize_jobs(metafunc: pytest.Metafunc) -> None:
    full = bool(metafunc.config.getoption("--full-matrix", default=False))
    cases = [Case(fw, db) for fw in AVAILABLE for db in ("sqlite", "postgresql")]
    if not full:
        cases = [Case(AVAILABLE[0], "postgresql"), Case("drf", "sqlite")]
    metafunc.parametrize(
        "jobs_case",
        [
            pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(f"later-jobs-{c.id}"))
            for c in cases
        ],
    )


def test_background_jobs_turned_on_later(
    jobs_case: Case, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if jobs_case.database == "postgresql":
        request.getfixturevalue("pg_cluster")
    template = uh.template_snapshot(tmp_path / "t")
    variant = Variant(jobs_case.framework, database=jobs_case.database)
    project = uh.generate(template, variant, tmp_path / "contract-api")
    db = new_database(jobs_case.database, tmp_path)
    env: dict[str, str | None] = {"DATABASE_URL": db.url}
    uh.install_and_migrate(project, db.url)
    secret_key = secrets.token_urlsafe(32)
    server_env: dict[str, str | None] = {"SECRET_KEY": secret_key}
    user = _make_user(project, {**env, "ENVIRONMENT": "production", **server_env}, admin=False)
    with (
        _server(project, db, tmp_path / "before.log", server_env) as srv,
        srv.client() as api,
    ):
        signed_in = _token(api, *user)
        for quantity in (3, 40):
            item = {"name": f"n{quantity}", "quantity": quantity}
            assert_json(api.post("/api/items", json=item, headers=signed_in), 201)
    _clean(project)

    uh.update(project, vcs_ref="v1.0.0", data={"background_jobs": True})
    assert not uh.conflict_markers(project), uh.git(project, "status", "--porcelain")
    uh.commit(project, "Turn background jobs on")
    harness.make(project, "install")
    harness.make(project, "migrate", env=env)

    redis = redis_server.RedisServer(tmp_path).start()
    worker: Worker | None = None
    try:
        with _server(
            project, db, tmp_path / "after.log", {"REDIS_URL": redis.url, **server_env}
        ) as srv:
            worker = Worker(project, srv.env, tmp_path / "worker.log")
            with srv.client() as api:
                ready = assert_json(api.get("/ready"), 200)
                assert ready["checks"] == {"database": "ok", "broker": "ok"}, ready
                api.headers.update(_token(api, *user))
                r = api.post("/api/reports")
                assert_json(r, 202)
                report = _wait_done(api, r.headers["location"])
                assert report["result"] == {"item_count": 2, "total_quantity": 43}, report
    finally:
        if worker is not None:
            worker.stop()
        redis.stop()


# --------------------------------------------------------------------------- users and tokens
# A project made before the `needs_auth` question existed, migrated and holding items
# (and, with an admin, an admin account of the separate admin table). `copier update
# --defaults` leaves it open: not asked, `needs_auth: false`, no token needed, no users'
# tables. `--data needs_auth=true`, `make install` and `make migrate` (revisions 0006 to
# 0008; DRF: the users app) then turn auth on with its data kept: the items from before
# have no owner, so a user does not see them and an admin sees and changes them; with an
# admin, its old account signs in as an admin, to the API and to the admin UI.


def _auth_cases(full: bool) -> list[Case]:
    if full:
        return [Case(fw, db, "before-auth") for fw in AVAILABLE for db in ("sqlite", "postgresql")]
    sample = [Case("fastapi", "sqlite", "before-auth"), Case("flask", "postgresql", "before-auth")]
    return [c for c in sample if c.framework in AVAILABLE]


def _parametrize_auth(metafunc: pytest.Metafunc) -> None:
    full = bool(metafunc.config.getoption("--full-matrix", default=False))
    metafunc.parametrize(
        "auth_case",
        [
            pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(f"later-auth-{c.id}"))
            for c in _auth_cases(full)
        ],
    )


def _user_tables(db: Database) -> list[str]:
    """The tables of users and sign-ins (`users`, `login_attempts`; DRF's `users_*` app),
    not Django's own `auth_user`, which every DRF project has."""
    if db.kind == "sqlite":
        with sqlite3.connect(db.sqlite_path or "", timeout=30) as con:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    else:
        names = db.psql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).split()
    return sorted(n for n in names if n in {"users", "login_attempts"} or n.startswith("users_"))


def _anonymous(srv: harness.Server, **kwargs: Any) -> httpx.Client:
    """A client of ``srv`` that sends no credentials of its own."""
    return httpx.Client(base_url=srv.base_url, timeout=30.0, **kwargs)


def _token(api: httpx.Client, username: str, password: str) -> dict[str, str]:
    """The Authorization header of `username`, from the token endpoint (a form, as OAuth2
    clients send it)."""
    r = api.post("/api/auth/token", data={"username": username, "password": password})
    body = assert_json(r, 200)
    assert body["token_type"] == "bearer", body
    return {"Authorization": f"Bearer {body['access_token']}"}


def _make_user(project: Path, env: dict[str, str | None], *, admin: bool) -> tuple[str, str]:
    """`make createuser` from the environment, as a script runs it; returns the name and
    password."""
    username = f"{'boss' if admin else 'user'}{secrets.randbelow(10**6)}"
    password = secrets.token_urlsafe(16)
    account: dict[str, str | None] = {"USERNAME": username, "PASSWORD": password}
    if admin:
        account["ADMIN"] = "true"
    harness.make(project, "createuser", env={**env, **account}, timeout=120)
    return username, password


def test_auth_stays_off_on_update_and_turns_on_with_the_data_kept(
    auth_case: Case, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if auth_case.database == "postgresql":
        request.getfixturevalue("pg_cluster")
    admin = auth_case.framework in ADMIN_CAPABLE
    template = uh.template_snapshot(tmp_path / "t", (_before_question("needs_auth"), "v0.9.0"))
    variant = Variant(
        auth_case.framework, database=auth_case.database, needs_admin=admin, needs_auth=False
    )
    project = uh.generate(template, variant, tmp_path / "contract-api", vcs_ref="v0.9.0")
    assert "needs_auth" not in yaml.safe_load((project / ".copier-answers.yml").read_text())
    db = new_database(auth_case.database, tmp_path)
    secret_key = secrets.token_urlsafe(32)
    env: dict[str, str | None] = {
        "DATABASE_URL": db.url,
        "ENVIRONMENT": "production",
        "SECRET_KEY": secret_key,
    }
    server_env: dict[str, str | None] = {"SECRET_KEY": secret_key}

    uh.install_and_migrate(project, db.url)
    old_admin: tuple[str, str] | None = None
    if admin:
        # The account of the separate admin table, made as that version's README says.
        old_admin = f"admin{secrets.randbelow(10**6)}", secrets.token_urlsafe(16)
        harness.make(
            project,
            "createadmin",
            env={**env, "ADMIN_USERNAME": old_admin[0], "ADMIN_PASSWORD": old_admin[1]},
            timeout=120,
        )
    names = [f"before-{n}-{secrets.token_hex(3)}" for n in (1, 2)]
    with (
        _server(project, db, tmp_path / "before.log", server_env) as srv,
        srv.client() as api,
    ):
        ids = [
            assert_json(api.post("/api/items", json={"name": n, "quantity": 3}), 201)["id"]
            for n in names
        ]
    _clean(project)

    # `copier update --defaults`: not asked, off, and the project stays open.
    uh.update(project, vcs_ref="v1.0.0")
    assert not uh.conflict_markers(project), uh.git(project, "status", "--porcelain")
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["needs_auth"] is False
    assert not (project / "src" / variant.package_name / "security.py").exists()
    uh.commit(project, "Update from the template")
    harness.make(project, "install")
    harness.make(project, "migrate", env=env)
    assert _user_tables(db) == []
    with (
        _server(project, db, tmp_path / "open.log", server_env) as srv,
        srv.client() as api,
    ):
        page = assert_json(api.get("/api/items"), 200)
        assert sorted(item["name"] for item in page["items"]) == sorted(names), page
        assert all("owner_id" not in item for item in page["items"]), page
    if uh.git(project, "status", "--porcelain"):
        uh.commit(project, "Lock dependencies")  # what `make install` wrote, if anything

    # `--data needs_auth=true`, then `make install` and `make migrate`, as the CHANGELOG says.
    uh.update(project, vcs_ref="v1.0.0", data={"needs_auth": True})
    assert not uh.conflict_markers(project), uh.git(project, "status", "--porcelain")
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["needs_auth"] is True
    uh.commit(project, "Turn users and tokens on")
    harness.make(project, "install")
    harness.make(project, "migrate", env=env)
    assert _user_tables(db) != []

    user = _make_user(project, env, admin=False)
    boss = old_admin or _make_user(project, env, admin=True)
    with _server(project, db, tmp_path / "after.log", server_env) as srv:
        if old_admin:
            # The old admin account signs in to the admin UI as before (Flask upgrades its
            # werkzeug hash to Argon2id there), then to the API as an admin.
            with _anonymous(srv, follow_redirects=False) as api:
                _log_in(api, srv.base_url, *old_admin)
        # A plain client: each request carries exactly the token the test gives it.
        with _anonymous(srv) as api:
            r = api.get("/api/items")
            assert r.status_code == 401, describe(r)
            assert r.headers.get("www-authenticate") == "Bearer", describe(r)

            as_boss = _token(api, *boss)
            me = assert_json(api.get("/api/users/me", headers=as_boss), 200)
            assert me["username"] == boss[0] and me["is_admin"] is True, me
            # The items from before are kept, have no owner, and an admin sees and changes them.
            page = assert_json(api.get("/api/items", headers=as_boss), 200)
            before = {item["id"]: item for item in page["items"]}
            assert sorted(before) == sorted(ids), page
            for item_id, name in zip(ids, names, strict=True):
                assert before[item_id]["name"] == name, before[item_id]
                assert before[item_id]["owner_id"] is None, before[item_id]
            changed = api.patch(f"/api/items/{ids[0]}", json={"quantity": 7}, headers=as_boss)
            assert assert_json(changed, 200)["quantity"] == 7

            # A user sees none of them, and may use their names for items of its own.
            as_user = _token(api, *user)
            user_id = assert_json(api.get("/api/users/me", headers=as_user), 200)["id"]
            assert assert_json(api.get("/api/items", headers=as_user), 200)["total"] == 0
            r = api.get(f"/api/items/{ids[1]}", headers=as_user)
            assert r.status_code == 404, describe(r)
            mine = api.post("/api/items", json={"name": names[1], "quantity": 1}, headers=as_user)
            assert assert_json(mine, 201)["owner_id"] == user_id
