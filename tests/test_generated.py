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
    ".github/renovate.json",
    ".github/workflows/ci.yml",
    ".pre-commit-config.yaml",
    ".env.example",
    ".gitignore",
    ".python-version",
    ".copier-answers.yml",
    "tests/conftest.py",
]
TARGETS = {"install", "dev", "serve", "test", "lint", "format", "migrate", "fuzz"}


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


@harness.only_database("postgresql")
def test_the_default_database_is_the_one_compose_starts(variant: Variant, project: Path) -> None:
    """No DATABASE_URL and no .env: the app uses compose.yaml's PostgreSQL, not a SQLite file."""
    assert not (project / ".env").exists()
    if variant.framework == "drf":
        code = (
            "from django.conf import settings; d = settings.DATABASES['default']; "
            "print(d['ENGINE'], d['USER'], d['PASSWORD'], d['HOST'], d['PORT'], d['NAME'])"
        )
        env = {"DJANGO_SETTINGS_MODULE": f"{variant.package_name}.settings"}
    else:
        code = f"from {variant.package_name}.config import Settings; print(Settings().database_url)"
        env = {}
    proc = harness.run([".venv/bin/python", "-c", code], cwd=project, env=env)
    assert proc.returncode == 0, proc.stdout
    db = yaml.safe_load((project / "compose.yaml").read_text())["services"]["db"]["environment"]
    user, password, name = db["POSTGRES_USER"], db["POSTGRES_PASSWORD"], db["POSTGRES_DB"]
    if variant.framework == "drf":
        expected = f"django.db.backends.postgresql {user} {password} 127.0.0.1 5432 {name}"
    else:
        expected = f"postgresql://{user}:{password}@127.0.0.1:5432/{name}"
    assert proc.stdout.strip() == expected


@harness.only_if(lambda v: v.needs_admin)
def test_createadmin_refuses_a_password_under_12_characters(
    variant: Variant, project: Path, tmp_path: Path
) -> None:
    # With users and tokens an admin is a user with is_admin: `createuser`'s variables.
    prefix = "" if variant.needs_auth else "ADMIN_"
    proc = harness.run(
        ["make", "createadmin"],
        cwd=project,
        env={
            f"{prefix}USERNAME": "admin",
            f"{prefix}PASSWORD": "x" * 11,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'admin.db'}",
        },
        timeout=120,
    )
    assert proc.returncode != 0, proc.stdout
    expected = (
        "\nerror: password: must be 12 to 128 characters\n"
        if variant.needs_auth
        else "\nerror: the admin password (ADMIN_PASSWORD) needs at least 12 characters\n"
    )
    assert expected in proc.stdout, proc.stdout


MISSING_FUZZ_TOKEN = "make fuzz: set FUZZ_TOKEN to an access token (README: Users and tokens)\n"


def test_make_fuzz_finds_nothing_in_a_fresh_project(
    variant: Variant,
    project: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """`make fuzz` (Schemathesis, every check) against `make serve` of the fresh project;
    with users and tokens, as a user whose token it is given."""
    if variant.database == "postgresql":
        cluster: postgres.PostgresCluster = request.getfixturevalue("pg_cluster")
        database_url = cluster.create_database()
    else:
        database_url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    with harness.Server(
        project, database_url=database_url, log_path=tmp_path / "server.log"
    ) as server:
        env = {**server.env, "FUZZ_ARGS": "--max-examples 10 --seed 1"}
        if variant.needs_auth:
            # Without a token it says what to set, and runs nothing.
            proc = harness.run(["make", "fuzz"], cwd=project, env=env, timeout=60)
            assert proc.returncode != 0
            assert MISSING_FUZZ_TOKEN in proc.stdout, proc.stdout
            env["FUZZ_TOKEN"] = server.token()
        output = harness.make(project, "fuzz", env=env, timeout=600)
    assert "No issues found" in output, output
