"""Every valid variant renders exactly the files it should, and nothing half-rendered.

Rendering is cheap (no install), so this runs over every valid combination of
every available framework, not a sample.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness import render
from matrix import AVAILABLE, Variant, all_variants, default_variant, sample_variants

PACKAGE = "contract_api"
ANSWER_KEYS = (
    "project_name|project_slug|package_name|description|author_name|author_email|"
    "python_version|project_size|needs_async|use_orm|needs_admin|framework|database|needs_auth|"
    "observability|background_jobs|kubernetes|_copier_\\w+"
)
UNRENDERED = re.compile(r"\{[{%]-?\s*(?:(?:if|elif|not)\s+)*(?:" + ANSWER_KEYS + r")\b")

COMMON = {
    ".copier-answers.yml",
    ".dockerignore",
    ".env.example",
    ".github/renovate.json",
    ".github/workflows/ci.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".python-version",
    "Dockerfile",
    "Makefile",
    "README.md",
    "compose.yaml",
    "pyproject.toml",
    "tests/fuzz_hooks.py",
    "tests/test_logs.py",
}

ALEMBIC = {
    "alembic.ini",
    "migrations/env.py",
    "migrations/script.py.mako",
    "migrations/versions/0001_create_items.py",
    "migrations/versions/0003_check_item_rules.py",
    "migrations/versions/0004_never_reuse_item_ids.py",
}
ADMIN_MIGRATION = "migrations/versions/0002_create_admin_users.py"
KUBERNETES = {
    f"deploy/kubernetes/{name}"
    for name in (
        "base/kustomization.yaml",
        "base/web.yaml",
        "base/service.yaml",
        "base/hpa.yaml",
        "base/pdb.yaml",
        "base/networkpolicy.yaml",
        "base/migrate.yaml",
        "overlays/development/kustomization.yaml",
        "overlays/production/kustomization.yaml",
    )
}
REPORTS_MIGRATION = "migrations/versions/0005_create_reports.py"
USERS_MIGRATION = "migrations/versions/0006_create_users.py"
REPORT_OWNER_MIGRATION = "migrations/versions/0007_add_report_owner.py"
MOVE_ADMINS_MIGRATION = "migrations/versions/0008_move_admin_users.py"


def _package(*names: str) -> set[str]:
    return {f"src/{PACKAGE}/{name}" for name in names}


def observability_files(v: Variant) -> set[str]:
    """What `observability` adds: metrics, traces and error reports, their tests, and
    the Prometheus configuration of compose.yaml's profile."""
    if not v.observability:
        return set()
    view = "metrics_view.py" if v.framework == "drf" else "routes/metrics.py"
    files = _package("metrics.py", "telemetry.py", view)
    return files | {"tests/test_observability.py", "deploy/prometheus.yml"}


# `make fuzz`'s settings: with a token, a wrong current password is an expected 400.
FUZZ_SETTINGS = "tests/schemathesis.toml"


def auth_files(v: Variant, routes: str, tests: set[str], extra: tuple[str, ...] = ()) -> set[str]:
    """What `needs_auth` adds to an Alembic starter: passwords and tokens, the users'
    queries, `make createuser`, the token and user routes (in `routes`, the starter's
    folder of request handlers), the starter's own `extra` modules, its `tests`, and the
    users' revisions: 0006 always, 0007 for the reports' owner, 0008 to move the admin
    accounts."""
    if not v.needs_auth:
        return set()
    files = _package(
        "security.py",
        "accounts.py",
        "createuser.py",
        f"{routes}/auth.py",
        f"{routes}/users.py",
        *extra,
    )
    files |= tests | {USERS_MIGRATION, FUZZ_SETTINGS}
    if v.background_jobs:
        files.add(REPORT_OWNER_MIGRATION)
    if v.needs_admin:
        files.add(MOVE_ADMINS_MIGRATION)
    return files


# The generated tests of users and tokens, per starter.
AUTH_TESTS = {
    "fastapi": {"tests/routes/test_auth.py", "tests/routes/test_users.py"},
    "flask": {"tests/routes/test_auth.py", "tests/routes/test_users.py"},
    "bottle": {
        "tests/routes/test_auth.py",
        "tests/routes/test_item_owners.py",
        "tests/routes/test_users.py",
        "tests/test_createuser.py",
    },
    "pyramid": {
        "tests/views/test_auth.py",
        "tests/views/test_users.py",
        "tests/test_createuser.py",
    },
}


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
        "migrations_state.py",
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
        files |= _package("admin.py") | {"tests/test_admin.py", ADMIN_MIGRATION}
    if v.background_jobs:
        files |= _package("worker.py", "routes/reports.py")
        files |= {"tests/routes/test_reports.py", REPORTS_MIGRATION}
    return files | observability_files(v) | auth_files(v, "routes", AUTH_TESTS[v.framework])


DRF_AUTH_TESTS = {
    "tests/items/test_owners.py",
    "tests/users/__init__.py",
    "tests/users/test_auth.py",
    "tests/users/test_createuser.py",
    "tests/users/test_views.py",
}


def drf_files(v: Variant) -> set[str]:
    files = COMMON | {"gunicorn.conf.py", "manage.py"}
    files |= _package(
        "__init__.py",
        "asgi.py",
        "errors.py",
        "faults.py",
        "migrations_state.py",
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
        "items/migrations/0002_item_rules.py",
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
        "tests/test_servers.py",
        "tests/test_settings.py",
    }
    if v.needs_admin:
        files |= _package("items/admin.py") | {"tests/items/test_admin.py"}
    if v.needs_admin and not v.needs_auth:
        # With users, `make createadmin` is the users' command with ADMIN=true.
        files |= _package(
            "items/management/__init__.py",
            "items/management/commands/__init__.py",
            "items/management/commands/createadmin.py",
        )
    if v.background_jobs:
        files |= _package(
            "worker.py",
            "reports/__init__.py",
            "reports/apps.py",
            "reports/migrations/0001_initial.py",
            "reports/migrations/__init__.py",
            "reports/models.py",
            "reports/serializers.py",
            "reports/tasks.py",
            "reports/urls.py",
            "reports/views.py",
        ) | {"tests/reports/__init__.py", "tests/reports/test_views.py"}
    return files | observability_files(v) | drf_auth_files(v)


def drf_auth_files(v: Variant) -> set[str]:
    """What `needs_auth` adds to DRF: a `users` app beside Django's `auth.User`, the
    items' owner (and the reports', with jobs) as migrations of their apps."""
    if not v.needs_auth:
        return set()
    files = _package(
        "users/__init__.py",
        "users/accounts.py",
        "users/apps.py",
        "users/authentication.py",
        "users/backends.py",
        "users/exceptions.py",
        "users/models.py",
        "users/schema.py",
        "users/serializers.py",
        "users/tokens.py",
        "users/urls.py",
        "users/validators.py",
        "users/views.py",
        "users/migrations/__init__.py",
        "users/migrations/0001_initial.py",
        "users/management/__init__.py",
        "users/management/commands/__init__.py",
        "users/management/commands/createuser.py",
        "items/migrations/0003_item_owner.py",
    )
    files |= DRF_AUTH_TESTS | {FUZZ_SETTINGS}
    if v.background_jobs:
        files |= _package("reports/migrations/0002_report_owner.py")
    return files


def bottle_files(v: Variant) -> set[str]:
    files = COMMON | ALEMBIC | {"gunicorn.conf.py"}
    files |= _package(
        "__init__.py",
        "app.py",
        "config.py",
        "db.py",
        "errors.py",
        "faults.py",
        "migrations_state.py",
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
    if v.background_jobs:
        files |= _package("worker.py", "routes/reports.py")
        files |= {"tests/routes/test_reports.py", REPORTS_MIGRATION}
    return files | observability_files(v) | auth_files(v, "routes", AUTH_TESTS[v.framework])


def flask_files(v: Variant) -> set[str]:
    files = COMMON | ALEMBIC | {"gunicorn.conf.py"}
    files |= _package(
        "__init__.py",
        "app.py",
        "config.py",
        "db.py",
        "docs.py",
        "errors.py",
        "faults.py",
        "migrations_state.py",
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
        files |= _package("admin.py", "templates/admin/signin.html")
        files |= {"tests/test_admin.py", ADMIN_MIGRATION}
    if v.background_jobs:
        files |= _package("worker.py", "routes/reports.py")
        files |= {"tests/routes/test_reports.py", REPORTS_MIGRATION}
    return (
        files
        | observability_files(v)
        | auth_files(v, "routes", AUTH_TESTS[v.framework], ("bearer.py",))
    )


def pyramid_files(v: Variant) -> set[str]:
    files = COMMON | ALEMBIC | {"development.ini", "gunicorn.conf.py"}
    files |= _package(
        "__init__.py",
        "config.py",
        "db.py",
        "errors.py",
        "faults.py",
        "migrations_state.py",
        "logs.py",
        "openapi.py",
        "problems.py",
        "py.typed",
        "repository.py",
        "responses.py",
        "routes.py",
        "schemas.py",
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
    if v.observability:
        files |= _package("metrics.py", "telemetry.py", "views/metrics.py")
        files |= {"tests/test_observability.py", "deploy/prometheus.yml"}
    if v.background_jobs:
        files |= _package("worker.py", "views/reports.py")
        files |= {"tests/views/test_reports.py", REPORTS_MIGRATION}
    return files | auth_files(v, "views", AUTH_TESTS[v.framework], ("security_policy.py",))


EXPECTED = {
    "fastapi": fastapi_files,
    "drf": drf_files,
    "flask": flask_files,
    "bottle": bottle_files,
    "pyramid": pyramid_files,
}


def render_variants(full_matrix: bool) -> list[Variant]:
    """What the file-list and prose checks render.

    With ``--full-matrix``, every combination. Otherwise every combination of the
    first questions (async, ORM, admin, database), with and without ``needs_auth``
    (its queries follow the data layer, and revision 0008 the admin), with the other
    part-two options at their defaults; plus each framework's covering sample, which
    takes every part-two value (open, unobserved, jobs, k8s) at least once; and one
    kubernetes variant with jobs, for the worker's Deployment. The other part-two
    options add files of their own without changing the others, so their full product
    would only render the same files again.
    """
    if full_matrix:
        return [v for framework in AVAILABLE for v in all_variants(framework)]
    chosen: list[Variant] = []
    for framework in AVAILABLE:
        default = default_variant(framework)
        firsts = [
            v
            for v in all_variants(framework)
            if (v.observability, v.background_jobs, v.kubernetes)
            == (default.observability, default.background_jobs, default.kubernetes)
        ]
        sample = sample_variants(framework)
        if not any(v.kubernetes and v.background_jobs for v in sample):
            sample += [v for v in all_variants(framework) if v.kubernetes and v.background_jobs][:1]
        chosen += list(dict.fromkeys(firsts + sample))
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" in metafunc.fixturenames:
        variants = render_variants(metafunc.config.getoption("--full-matrix"))
        metafunc.parametrize("variant", variants, ids=str)


def rendered_files(project: Path) -> set[str]:
    return {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


_RENDERED: dict[Variant, Path] = {}


@pytest.fixture
def project(variant: Variant, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The variant rendered once per test run (several tests read it, none writes)."""
    if variant not in _RENDERED:
        _RENDERED[variant] = render(variant, tmp_path_factory.mktemp(variant.id) / "project")
    return _RENDERED[variant]


def test_exact_file_list(variant: Variant, project: Path) -> None:
    assert variant.framework in EXPECTED, f"add the file list of {variant.framework} here"
    files = rendered_files(project)
    expected = EXPECTED[variant.framework](variant)
    if variant.kubernetes:
        expected |= KUBERNETES
        if variant.background_jobs:
            expected.add("deploy/kubernetes/base/worker.yaml")
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


# --------------------------------------------------------------------------- needs_auth off
# Without `needs_auth` a project renders as it did before the option existed: the
# file list above has none of its files, and no file mentions users or tokens.
AUTH_WORDS = re.compile(
    r"PyJWT|\bjwt\b|simplejwt|\bBearer\b|owner_id|createuser|ACCESS_TOKEN_MINUTES|"
    r"ALLOW_SIGNUP|/api/auth/|/api/users|login_attempts",
    re.IGNORECASE,
)


def auth_mentions(project: Path) -> list[str]:
    """`file: word` for every file of `project` that mentions users and tokens."""
    found = []
    for name in sorted(rendered_files(project)):
        if name == ".copier-answers.yml":  # records `needs_auth: false` itself
            continue
        text = (project / name).read_bytes().decode("utf-8", errors="replace")
        words = sorted({m.group(0) for m in AUTH_WORDS.finditer(text)})
        if words:
            found.append(f"{name}: {', '.join(words)}")
    return found


def test_an_open_project_has_nothing_of_users_and_tokens(variant: Variant, project: Path) -> None:
    found = auth_mentions(project)
    if variant.needs_auth:
        assert found, "the scan finds nothing even where auth is on"
    else:
        assert found == [], "\n".join(found)


# --------------------------------------------------------------------------- own words
# Generated code reads as the user's own project: its comments and docstrings name no
# other framework (nor that framework's server or request library) and never the
# template that wrote it. Each name is allowed in the projects that really use it.
FRAMEWORK_WORDS = {
    "fastapi": ("FastAPI", "Starlette", "uvicorn"),
    "drf": ("Django", "DRF", "REST framework"),
    "flask": ("Flask", "Werkzeug", "Quart"),
    "bottle": ("Bottle",),
    "pyramid": ("Pyramid", "pserve"),
    "gunicorn": ("gunicorn",),
    "webob": ("WebOb",),
}
USES = {
    "fastapi": {"fastapi"},
    "drf": {"drf", "gunicorn"},
    "flask": {"flask", "gunicorn"},
    "bottle": {"bottle", "gunicorn", "webob"},  # its tests run on WebTest, hence WebOb
    "pyramid": {"pyramid", "gunicorn", "webob"},
}
TEMPLATE_WORDS = re.compile(
    r"\bcopier\b|\bthe template\b|\bstarters?\b|\b(?:CONTRACT|QUESTIONS|LAYOUT|COPIER-NOTES)\.md\b",
    re.IGNORECASE,
)


def _word(name: str) -> re.Pattern[str]:
    """`name` as a whole word; case-insensitive, except for an acronym (DRF)."""
    return re.compile(
        rf"(?<![\w-]){re.escape(name)}(?![\w])", 0 if name.isupper() else re.IGNORECASE
    )


def _foreign_words(framework: str) -> list[tuple[str, re.Pattern[str]]]:
    allowed = USES[framework]
    return [
        (name, _word(name))
        for owner, names in FRAMEWORK_WORDS.items()
        if owner not in allowed
        for name in names
    ]


def python_prose(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and docstring of a Python module."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                yield node.body[0].lineno, docstring


def foreign_prose(project: Path, variant: Variant) -> list[str]:
    """Comments and docstrings of `project` that name another framework or the template."""
    words = _foreign_words(variant.framework)
    # The user's own answers may say anything (this suite's description names the template).
    own = [str(variant.answers[key]) for key in ("project_name", "description")]
    found = []
    for path in sorted(project.rglob("*.py")):
        for line, text in python_prose(path.read_text()):
            for answer in own:
                text = text.replace(answer, "")
            names = [name for name, pattern in words if pattern.search(text)]
            names += [m.group(0) for m in TEMPLATE_WORDS.finditer(text)]
            if names:
                where = f"{path.relative_to(project)}:{line}"
                found.append(f"{where}: {', '.join(names)}: {text.strip()[:120]!r}")
    return found


def test_comments_and_docstrings_are_the_projects_own(variant: Variant, project: Path) -> None:
    assert FRAMEWORK_WORDS.keys() >= USES.keys()
    found = foreign_prose(project, variant)
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    ("framework", "comment"),
    [
        ("flask", "# As in FastAPI's sync endpoints."),
        ("fastapi", "# gunicorn's preload_app builds it first."),
        ("bottle", '"""Read as every starter reads it."""'),
        ("pyramid", "# See CONTRACT" + ".md, section 4."),  # split: no reference to docs/
        ("drf", "# A WebOb request would not."),
    ],
)
def test_foreign_prose_is_found(framework: str, comment: str, tmp_path: Path) -> None:
    variant = default_variant(framework)
    (tmp_path / "clean.py").write_text(
        '"""Items."""\n\n# The item list, a page at a time.\nX = 1\n'
    )
    (tmp_path / "planted.py").write_text(f"{comment}\nX = 1\n")
    found = foreign_prose(tmp_path, variant)
    assert len(found) == 1, found
    assert found[0].startswith("planted.py:1: "), found
