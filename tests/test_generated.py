"""Each rendered variant's own commands pass: `make test`, `make lint` (docs/CONTRACT.md section 1).

The project is rendered and installed once per pytest process and shared with the
contract suite (``harness.installed_project``); with ``database=postgresql`` the
generated tests also run against a fresh PostgreSQL database (TEST_DATABASE_URL).
"""

from __future__ import annotations

from pathlib import Path

import harness
import postgres
import pytest
import yaml
from matrix import Variant

COMMON_FILES = [
    "pyproject.toml",
    "Makefile",
    "README.md",
    "Dockerfile",
    ".dockerignore",
    "compose.yaml",
    ".github/workflows/ci.yml",
    ".pre-commit-config.yaml",
    ".env.example",
    ".gitignore",
    ".python-version",
    ".copier-answers.yml",
    "tests/conftest.py",
]
TARGETS = {"install", "dev", "serve", "test", "lint", "format", "migrate"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    harness.parametrize_variants(metafunc)


@pytest.fixture(scope="session")
def project(variant: Variant, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The variant rendered and installed (shared with the contract suite in this process)."""
    return harness.installed_project(variant, tmp_path_factory)


def test_rendered_files(variant: Variant, project: Path) -> None:
    missing = [f for f in COMMON_FILES if not (project / f).is_file()]
    assert not missing, f"{variant.id}: missing {missing}"
    assert (project / "src" / variant.package_name / "__init__.py").is_file()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    for key, value in variant.answers.items():
        assert answers.get(key) == value, f".copier-answers.yml: {key}={answers.get(key)!r}"
    assert not list(project.rglob("*.jinja")), "unrendered .jinja files"
    targets = harness.make_targets(project)
    expected = TARGETS | ({"createadmin"} if variant.needs_admin else set())
    assert expected <= targets, f"Makefile lacks {sorted(expected - targets)}"
    if not variant.needs_admin:
        assert "createadmin" not in targets, "createadmin without needs_admin"
    readme = (project / "README.md").read_text()
    for target in sorted(expected - {"format"}):
        assert f"make {target}" in readme, f"README.md does not show `make {target}`"


def test_make_test(project: Path) -> None:
    harness.make(project, "test")


def test_make_lint(project: Path) -> None:
    harness.make(project, "lint")


@harness.only_database("postgresql")
def test_make_test_on_postgresql(project: Path, pg_cluster: postgres.PostgresCluster) -> None:
    harness.make(project, "test", env={"TEST_DATABASE_URL": pg_cluster.create_database()})
