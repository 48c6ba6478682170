"""Every valid variant renders exactly the files it should, and nothing half-rendered.

Rendering is cheap (no install), so this runs over every valid combination of
every available framework, not a sample.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from harness import render
from matrix import AVAILABLE, Variant, all_variants

PACKAGE = "contract_api"
ANSWER_KEYS = (
    "project_name|project_slug|package_name|description|author_name|author_email|"
    "python_version|project_size|needs_async|use_orm|needs_admin|framework|database|_copier_\\w+"
)
UNRENDERED = re.compile(r"\{[{%]-?\s*(?:(?:if|elif|not)\s+)*(?:" + ANSWER_KEYS + r")\b")

COMMON = {
    ".copier-answers.yml",
    ".dockerignore",
    ".env.example",
    ".github/workflows/ci.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".python-version",
    "Dockerfile",
    "Makefile",
    "README.md",
    "compose.yaml",
    "pyproject.toml",
}

ALEMBIC = {
    "alembic.ini",
    "migrations/env.py",
    "migrations/script.py.mako",
    "migrations/versions/0001_create_items.py",
}


def _package(*names: str) -> set[str]:
    return {f"src/{PACKAGE}/{name}" for name in names}


def fastapi_files(v: Variant) -> set[str]:
    files = COMMON | ALEMBIC
    files |= _package(
        "__init__.py",
        "app.py",
        "config.py",
        "db.py",
        "dependencies.py",
        "docs.py",
        "errors.py",
        "faults.py",
        "logs.py",
        "middleware.py",
        "problems.py",
        "py.typed",
        "repository.py",
        "schemas.py",
        "routes/__init__.py",
        "routes/health.py",
        "routes/items.py",
    )
    files |= {
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/helpers.py",
        "tests/test_config.py",
        "tests/test_docs.py",
        "tests/test_errors.py",
        "tests/test_middleware.py",
        "tests/routes/__init__.py",
        "tests/routes/test_health.py",
        "tests/routes/test_items.py",
    }
    if v.use_orm:
        files |= _package("models.py")
    if v.needs_admin:
        files |= _package("admin.py") | {"tests/test_admin.py"}
    return files


def drf_files(v: Variant) -> set[str]:
    files = COMMON | {"manage.py"}
    files |= _package(
        "__init__.py",
        "asgi.py",
        "errors.py",
        "faults.py",
        "health.py",
        "logs.py",
        "middleware.py",
        "negotiation.py",
        "openapi.py",
        "problems.py",
        "settings.py",
        "urls.py",
        "wsgi.py",
        "items/__init__.py",
        "items/apps.py",
        "items/migrations/0001_initial.py",
        "items/migrations/__init__.py",
        "items/models.py",
        "items/pagination.py",
        "items/serializers.py",
        "items/urls.py",
        "items/views.py",
    )
    files |= {
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/items/__init__.py",
        "tests/items/test_views.py",
        "tests/test_errors.py",
        "tests/test_health.py",
        "tests/test_middleware.py",
        "tests/test_openapi.py",
        "tests/test_settings.py",
    }
    if v.needs_admin:
        files |= _package("items/admin.py") | {"tests/items/test_admin.py"}
    return files


def bottle_files(v: Variant) -> set[str]:
    files = COMMON | ALEMBIC
    files |= _package(
        "__init__.py",
        "app.py",
        "config.py",
        "db.py",
        "errors.py",
        "faults.py",
        "hooks.py",
        "logs.py",
        "openapi.py",
        "plugins.py",
        "problems.py",
        "repository.py",
        "schemas.py",
        "routes/__init__.py",
        "routes/docs.py",
        "routes/health.py",
        "routes/items.py",
    )
    files |= {
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/helpers.py",
        "tests/test_app.py",
        "tests/test_errors.py",
        "tests/test_hooks.py",
        "tests/test_plugins.py",
        "tests/routes/__init__.py",
        "tests/routes/test_docs.py",
        "tests/routes/test_health.py",
        "tests/routes/test_items.py",
    }
    if v.use_orm:
        files |= _package("models.py")
    return files


def flask_files(v: Variant) -> set[str]:
    files = COMMON | ALEMBIC
    files |= _package(
        "__init__.py",
        "app.py",
        "config.py",
        "db.py",
        "docs.py",
        "errors.py",
        "faults.py",
        "extensions.py",
        "logs.py",
        "middleware.py",
        "problems.py",
        "repository.py",
        "schemas.py",
        "routes/__init__.py",
        "routes/health.py",
        "routes/items.py",
    )
    files |= {
        "tests/conftest.py",
        "tests/routes/test_health.py",
        "tests/routes/test_items.py",
        "tests/test_app.py",
        "tests/test_docs.py",
        "tests/test_errors.py",
        "tests/test_middleware.py",
    }
    if v.use_orm:
        files |= _package("models.py")
    if v.needs_admin:
        files |= _package("admin.py", "templates/admin/signin.html") | {"tests/test_admin.py"}
    return files


def pyramid_files(v: Variant) -> set[str]:
    files = COMMON | ALEMBIC | {"development.ini"}
    files |= _package(
        "__init__.py",
        "config.py",
        "db.py",
        "errors.py",
        "faults.py",
        "logs.py",
        "openapi.py",
        "problems.py",
        "py.typed",
        "repository.py",
        "responses.py",
        "routes.py",
        "schemas.py",
        "static/docs.html",
        "transactions.py",
        "tweens.py",
        "views/__init__.py",
        "views/docs.py",
        "views/health.py",
        "views/items.py",
    )
    files |= {
        "tests/conftest.py",
        "tests/test_config.py",
        "tests/test_errors.py",
        "tests/test_tweens.py",
        "tests/views/test_docs.py",
        "tests/views/test_health.py",
        "tests/views/test_items.py",
    }
    if v.use_orm:
        files |= _package("models.py")
    return files


EXPECTED = {
    "fastapi": fastapi_files,
    "drf": drf_files,
    "flask": flask_files,
    "bottle": bottle_files,
    "pyramid": pyramid_files,
}

VARIANTS = [v for framework in AVAILABLE for v in all_variants(framework)]


def rendered_files(project: Path) -> set[str]:
    return {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_exact_file_list(variant: Variant, tmp_path: Path) -> None:
    assert variant.framework in EXPECTED, f"add the file list of {variant.framework} here"
    project = render(variant, tmp_path / "project")
    files = rendered_files(project)
    expected = EXPECTED[variant.framework](variant)
    assert sorted(files - expected) == [], "rendered but not expected"
    assert sorted(expected - files) == [], "expected but not rendered"

    for name in files:
        text = (project / name).read_bytes().decode("utf-8", errors="replace")
        # Jinja that uses an answer was meant for Copier: a file that kept it was not rendered
        # (a missing .jinja suffix). Other Jinja may be the app's own (Flask templates).
        assert not UNRENDERED.search(text), f"{name}: {UNRENDERED.search(text)}"
        assert not name.endswith(".jinja"), name

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert Path(answers["_src_path"]).is_absolute()
    for key, value in variant.answers.items():
        assert answers[key] == value, key
