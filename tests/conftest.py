"""Fixtures shared by the whole template suite.

Keep this file small: rendering, installing and serving helpers live in
``tests/harness.py``; the contract suite has its own ``tests/contract/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import postgres
import pytest


@pytest.fixture(autouse=True)
def _isolated_copier_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the developer's own Copier settings (defaults, trust) out of every test."""
    settings = tmp_path_factory.getbasetemp() / "copier-settings.yml"
    settings.write_text("{}\n")
    monkeypatch.setenv("COPIER_SETTINGS_PATH", str(settings))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[postgres.PostgresCluster]:
    """The worker's throwaway PostgreSQL server (stopped at the end of the session)."""
    try:
        cluster = postgres.cluster()
    except postgres.PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cluster
    postgres.stop_cluster()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-matrix",
        action="store_true",
        default=False,
        help="run every valid option combination of every framework, not the default sample",
    )
