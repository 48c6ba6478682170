"""Fixtures of the black-box contract suite (docs/CONTRACT.md sections 2-6).

Every test takes ``variant`` (parametrized per framework and options, one xdist
group per variant) and talks HTTP to a real ``make serve`` process:

- ``server``: the variant's main server (production settings), started once per
  variant on its own database and shared by the tests that do not need special
  settings; its clean exit on SIGTERM is checked at teardown.
- ``start_server(...)``: short-lived servers for the fault cases, each on its
  own database unless told otherwise.
- ``chromium`` / ``tab``: the browser tests' headless chromium (one per process) and
  a fresh page on the main server; when a test fails, the page's screenshot and
  its record of requests and console errors are kept under the pytest base
  temp directory (``browser-artifacts/``) and the report names them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import browser
import harness
import httpx
import postgres
import pytest
from matrix import Variant

from contract.helpers import Database, new_database


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    harness.parametrize_variants(metafunc)


@pytest.fixture(scope="session")
def project(variant: Variant, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The variant rendered and installed (shared with test_generated.py in this process)."""
    return harness.installed_project(variant, tmp_path_factory)


@pytest.fixture(scope="session")
def _pg_cluster_teardown() -> Iterator[None]:
    yield
    postgres.stop_cluster()


@pytest.fixture(scope="session")
def databases(
    variant: Variant, tmp_path_factory: pytest.TempPathFactory, _pg_cluster_teardown: None
) -> Callable[[], Database]:
    """Makes fresh, empty databases of the variant's kind (SQLite file or PostgreSQL)."""
    scratch = harness.variant_tmp(tmp_path_factory, variant, "db")

    def make_db() -> Database:
        try:
            return new_database(variant.database, scratch)
        except postgres.PostgresUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)

    return make_db


@pytest.fixture(scope="session")
def main_db(databases: Callable[[], Database]) -> Database:
    return databases()


@pytest.fixture(scope="session")
def server(
    variant: Variant,
    project: Path,
    main_db: Database,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[harness.Server]:
    """The variant's main server: production settings, its own database."""
    logs = harness.variant_tmp(tmp_path_factory, variant, "main")
    srv = harness.Server(project, database_url=main_db.url, log_path=logs / "server.log")
    with srv:
        yield srv
    problems = []
    if srv.stop_problem:
        problems.append(srv.stop_problem)
    if srv.returncode != 0:
        problems.append(f"`make serve` exited with {srv.returncode} after SIGTERM")
    if srv.leftovers:
        problems.append(f"processes left running after `make serve` exited: {srv.leftovers}")
    if problems:
        pytest.fail(f"{variant.id}: " + "; ".join(problems) + f"\nlog tail:\n{srv.log()[-4000:]}")


@pytest.fixture
def api(server: harness.Server) -> Iterator[httpx.Client]:
    """An HTTP client for the main server."""
    with server.client() as client:
        yield client


@pytest.fixture
def start_server(
    project: Path,
    databases: Callable[[], Database],
    tmp_path: Path,
) -> Iterator[Callable[..., harness.Server]]:
    """Start short-lived servers (stopped at the end of the test, whatever happens).

    ``start_server(env={...}, database=db_or_None, database_url=..., migrate=True)``
    """
    started: list[harness.Server] = []

    def start(
        *,
        env: dict[str, str | None] | None = None,
        database: Database | None = None,
        database_url: str | None = None,
        migrate: bool = True,
        name: str = "server",
    ) -> harness.Server:
        if database_url is None:
            database_url = (database or databases()).url
        srv = harness.Server(
            project,
            database_url=database_url,
            env=env,
            migrate=migrate,
            log_path=tmp_path / f"{name}-{len(started)}.log",
        )
        started.append(srv)
        srv.start()
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[browser.Chromium]:
    """Debian's chromium, headless, driven by Playwright (one per pytest process)."""
    try:
        instance = browser.Chromium()
    except browser.BrowserUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield instance
    instance.close()


@pytest.fixture
def tab(
    chromium: browser.Chromium, server: harness.Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[browser.Tab]:
    """A fresh browser page (its own context: no cookies) on the main server."""
    page = chromium.tab(server.base_url, tmp_path_factory.getbasetemp() / "browser-artifacts")
    yield page
    page.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep a failed browser test's screenshot and page record, and name them in the report."""
    report = yield
    page = getattr(item, "funcargs", {}).get("tab")
    if report.when == "call" and report.failed and isinstance(page, browser.Tab):
        saved = page.save_artifacts(item.nodeid)
        report.sections.append(("browser artifacts", f"{saved}\n{page.record()}"))
    return report
