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
Redis and ``make worker``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import harness
import httpx
import pytest
import redis_server
import update_history as uh
import yaml
from contract.helpers import assert_json, describe, new_database
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
    variant = Variant(case.framework, database=case.database, needs_admin=from_old)
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


def _before_observability() -> str:
    """The last commit of this repository whose copier.yml did not ask `observability`."""
    added = uh.git(
        uh.TEMPLATE_ROOT, "log", "--reverse", "--format=%H", "-S", "\nobservability:", "--",
        "copier.yml",
    ).split()  # fmt: skip
    assert added, "no commit added the observability question to copier.yml (a shallow clone?)"
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
    template = uh.template_snapshot(tmp_path / "t", (_before_observability(), "v0.9.0"))
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
# A project copied without jobs, migrated and holding items, turns them on with
# `copier update --defaults --data background_jobs=true`, `make install` and `make migrate`
# (revision 0005, or DRF's reports app, adds the reports table to the existing database):
# with a Redis and `make worker`, a report counts the items stored before the update.


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
    with (
        harness.Server(
            project, database_url=db.url, log_path=tmp_path / "before.log", migrate=False
        ) as srv,
        srv.client() as api,
    ):
        for quantity in (3, 40):
            assert_json(
                api.post("/api/items", json={"name": f"n{quantity}", "quantity": quantity}), 201
            )
    _clean(project)

    uh.update(project, vcs_ref="v1.0.0", data={"background_jobs": True})
    assert not uh.conflict_markers(project), uh.git(project, "status", "--porcelain")
    uh.commit(project, "Turn background jobs on")
    harness.make(project, "install")
    harness.make(project, "migrate", env=env)

    redis = redis_server.RedisServer(tmp_path).start()
    worker: Worker | None = None
    try:
        with harness.Server(
            project,
            database_url=db.url,
            log_path=tmp_path / "after.log",
            migrate=False,
            env={"REDIS_URL": redis.url},
        ) as srv:
            worker = Worker(project, srv.env, tmp_path / "worker.log")
            with srv.client() as api:
                ready = assert_json(api.get("/ready"), 200)
                assert ready["checks"] == {"database": "ok", "broker": "ok"}, ready
                r = api.post("/api/reports")
                assert_json(r, 202)
                report = _wait_done(api, r.headers["location"])
                assert report["result"] == {"item_count": 2, "total_quantity": 43}, report
    finally:
        if worker is not None:
            worker.stop()
        redis.stop()
