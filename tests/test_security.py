"""Secure defaults of every rendered project, and its own CI and Dockerfile (issue 9).

Checked on each variant's installed project (``harness.installed_project``, shared with
``test_generated.py`` and the contract suite in the same xdist group):

- bandit: no finding of medium or high severity, at any confidence, in the project's
  Python (``src/``, ``tests/``, ``migrations/``, ``manage.py``). Low-severity findings are
  left out: they are ``assert`` in tests and fixed test passwords, which the project's own
  ruff (``S`` rules) already weighs.
- the locked dependencies (``uv.lock``, the file the user commits, every group and
  platform) have no known vulnerability in PyPI's JSON API, the data pip-audit's default
  service reads. See ``test_locked_dependencies_have_no_known_vulnerability`` for what this
  machine's PyPI can answer and why pip-audit itself is not run.
- actionlint on ``.github/workflows/ci.yml`` (with shellcheck for the ``run:`` steps) and
  hadolint on ``Dockerfile``: zero findings at any level.
- DRF: ``manage.py check --deploy`` is clean in production settings.

The tools are the template's own dev dependencies (``pyproject.toml``), run from its venv;
each ships its binary in the wheel and runs offline. ``test_the_checkers_report_findings``
shows that each invocation reports a known-bad input, so a clean result means something.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import harness
import httpx
import pytest
from matrix import Variant

# The template's venv (not resolved: its python is a symlink out of the venv).
TOOLS = Path(sys.executable).parent


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    harness.parametrize_variants(metafunc)


@pytest.fixture(scope="session")
def project(variant: Variant, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The variant rendered and installed (shared with the other suites in this process)."""
    return harness.installed_project(variant, tmp_path_factory)


def tool(name: str) -> str:
    path = TOOLS / name
    assert path.is_file(), f"{path} is missing: run `uv sync` in the template (dev dependencies)"
    return str(path)


def isolated_home(tmp_path: Path) -> dict[str, str | None]:
    """An empty HOME and XDG_CONFIG_HOME: no user-wide linter configuration applies."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


# --------------------------------------------------------------------------- bandit

BANDIT_TARGETS = ("src", "tests", "migrations", "manage.py")


def bandit(paths: list[str], cwd: Path, report: Path) -> dict[str, Any]:
    """bandit at severity medium and up, every confidence; returns its JSON report."""
    proc = harness.run(
        [
            tool("bandit"),
            "--recursive",
            "--severity-level",
            "medium",
            "--confidence-level",
            "low",
            "--format",
            "json",
            "--output",
            str(report),
            "--quiet",
            *paths,
        ],
        cwd=cwd,
        timeout=300,
    )
    assert report.is_file(), f"bandit wrote no report (exit {proc.returncode}):\n{proc.stdout}"
    data: dict[str, Any] = json.loads(report.read_text())
    data["_returncode"] = proc.returncode
    data["_output"] = proc.stdout
    return data


def bandit_findings(data: dict[str, Any]) -> str:
    return "\n".join(
        f"{r['filename']}:{r['line_number']}: {r['test_id']} {r['test_name']} "
        f"(severity {r['issue_severity']}, confidence {r['issue_confidence']}): "
        f"{r['issue_text']}\n    {r['code'].rstrip()}"
        for r in data["results"]
    )


def test_bandit_finds_nothing_of_medium_or_high_severity(
    variant: Variant, project: Path, tmp_path: Path
) -> None:
    targets = [t for t in BANDIT_TARGETS if (project / t).exists()]
    data = bandit(targets, project, tmp_path / "bandit.json")
    assert not data["errors"], f"bandit could not scan: {data['errors']}\n{data['_output']}"
    assert not data["results"], (
        f"{variant.id}: bandit findings of medium or high severity:\n{bandit_findings(data)}"
    )
    assert data["_returncode"] == 0, data["_output"]
    scanned = {Path(f).as_posix() for f in data["metrics"] if f != "_totals"}
    package = f"src/{variant.package_name}/"
    assert any(f.startswith(package) for f in scanned), f"bandit scanned no package: {scanned}"
    assert any(f.startswith("tests/") for f in scanned), f"bandit scanned no tests: {scanned}"


# --------------------------------------------------------------------------- actionlint, hadolint


def actionlint(workflow: Path, cwd: Path, env: dict[str, str | None]) -> tuple[int, list[Any]]:
    """actionlint (shellcheck on, pyflakes off: no Python in run: steps); (exit code, errors)."""
    proc = harness.run(
        [
            tool("actionlint"),
            "-no-color",
            "-format",
            "{{json .}}",
            "-shellcheck",
            tool("shellcheck"),
            "-pyflakes",
            "",
            str(workflow),
        ],
        cwd=cwd,
        env=env,
        timeout=120,
    )
    try:
        errors = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"actionlint failed (exit {proc.returncode}):\n{proc.stdout}"
        ) from None
    return proc.returncode, errors


def actionlint_findings(errors: list[Any]) -> str:
    return "\n".join(
        f"{e['filepath']}:{e['line']}:{e['column']}: {e['message']} [{e['kind']}]\n"
        f"    {e.get('snippet', '').splitlines()[0] if e.get('snippet') else ''}"
        for e in errors
    )


def hadolint(dockerfile: Path, cwd: Path, env: dict[str, str | None]) -> tuple[int, list[Any]]:
    """hadolint with its defaults (no configuration file); (exit code, findings)."""
    proc = harness.run(
        [tool("hadolint"), "--no-color", "--format", "json", str(dockerfile)],
        cwd=cwd,
        env=env,
        timeout=120,
    )
    try:
        findings = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"hadolint failed (exit {proc.returncode}):\n{proc.stdout}") from None
    return proc.returncode, findings


def hadolint_findings(findings: list[Any]) -> str:
    return "\n".join(
        f"{f['file']}:{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings
    )


def test_ci_workflow_passes_actionlint(variant: Variant, project: Path, tmp_path: Path) -> None:
    workflow = project / ".github" / "workflows" / "ci.yml"
    assert not (project / ".github" / "actionlint.yaml").exists(), "no actionlint config expected"
    code, errors = actionlint(workflow, project, isolated_home(tmp_path))
    assert errors == [], f"{variant.id}: actionlint findings:\n{actionlint_findings(errors)}"
    assert code == 0


def test_dockerfile_passes_hadolint(variant: Variant, project: Path, tmp_path: Path) -> None:
    assert not (project / ".hadolint.yaml").exists(), "no hadolint config expected"
    code, findings = hadolint(project / "Dockerfile", project, isolated_home(tmp_path))
    assert findings == [], f"{variant.id}: hadolint findings:\n{hadolint_findings(findings)}"
    assert code == 0


def test_the_checkers_report_findings(tmp_path: Path) -> None:
    """Each checker, invoked as above, reports a known-bad input (a clean result is real)."""
    env = isolated_home(tmp_path)
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(
        "on: pull_request\n"
        "jobs:\n"
        "  test:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v2\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
        "      - run: cd $DIR\n"
    )
    _, errors = actionlint(workflows / "ci.yml", tmp_path, env)
    kinds = {e["kind"] for e in errors}
    assert {"action", "expression", "shellcheck"} <= kinds, actionlint_findings(errors)

    (tmp_path / "Dockerfile").write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install -y curl\nUSER app\n"
    )
    _, findings = hadolint(tmp_path / "Dockerfile", tmp_path, env)
    codes = {f["code"] for f in findings}
    assert {"DL3007", "DL3008", "DL3015", "DL3009", "DL3066"} <= codes, hadolint_findings(findings)

    (tmp_path / "bad.py").write_text(
        "import subprocess\n\n\ndef run(cmd: str) -> None:\n"
        "    subprocess.call(cmd, shell=True)\n    assert cmd\n"
    )
    data = bandit(["bad.py"], tmp_path, tmp_path / "bandit.json")
    ids = {r["test_id"] for r in data["results"]}
    # B602 is high severity; B101 (assert) is low and left out at this level.
    assert ids == {"B602"}, bandit_findings(data)


# --------------------------------------------------------------------------- dependencies

PYPI = "https://pypi.org/pypi"

# Locked below PyPI's latest release on purpose. For these, this machine cannot ask PyPI
# about the locked release (see below); each is here because a bound holds it back.
HELD_BACK = {
    "django": "DRF starter: the 5.2 LTS series (django>=5.2,<5.3)",
    "django-stubs": "DRF starter: the stubs of the Django series it runs (<5.3)",
    "djangorestframework-stubs": "DRF starter: newer releases need newer django-stubs",
    "mypy": "DRF starter: django-stubs[compatible-mypy] pins the mypy it supports",
    "packaging": "background jobs: kombu[redis] pins packaging==26.3",
    "python-dateutil": "background jobs: celery 5.7 pins python-dateutil==2.9.0.post0",
    "openapi-schema-validator": "Pyramid starter: openapi-core 0.23 (pyramid-openapi3 0.22): <0.9",
    "openapi-spec-validator": "Pyramid starter: openapi-core 0.23 (pyramid-openapi3 0.22): <0.9",
    "jsonschema-rs": "make fuzz: schemathesis 4.32 requires jsonschema-rs>=0.60.1,<0.61",
    "jsonschema-path": "Pyramid starter: openapi-core 0.23 (pyramid-openapi3 0.22): <0.5",
    "pathable": "Pyramid starter: jsonschema-path 0.4's bound",
    "setuptools": "Pyramid starter: setuptools<80.9 (Pyramid 2 imports pkg_resources)",
    "soupsieve": "WebTest's beautifulsoup4: soupsieve 4 needs Python 3.11.5+, 2.x is kept below",
    "wtforms": "FastAPI admin: sqladmin's wtforms<3.3",
}
# Whole families that move together: each OpenTelemetry instrumentation (a 0.x beta) pins
# the API, SDK and exporter release it was built with, so a new SDK release waits for them.
HELD_BACK_FAMILIES = {
    "opentelemetry-": "observability: the instrumentations pin the SDK release they support",
}


def held_back_reason(name: str) -> str | None:
    """Why ``name`` may be locked below its latest release, or None."""
    if name in HELD_BACK:
        return HELD_BACK[name]
    return next(
        (why for prefix, why in HELD_BACK_FAMILIES.items() if name.startswith(prefix)), None
    )


_pypi_lock = threading.Lock()
_pypi_cache: dict[str, Any] = {}


def _get_json(client: httpx.Client, url: str) -> Any:
    """GET a PyPI JSON document (cached per process); None when PyPI answers 404."""
    with _pypi_lock:
        if url in _pypi_cache:
            return _pypi_cache[url]
    for attempt in range(3):
        try:
            r = client.get(url)
        except httpx.TransportError:
            if attempt == 2:
                raise
            continue
        if r.status_code == 404:
            value = None
            break
        r.raise_for_status()
        value = r.json()
        break
    with _pypi_lock:
        _pypi_cache[url] = value
    return value


def audit(client: httpx.Client, name: str, version: str) -> tuple[str, list[dict[str, Any]]]:
    """PyPI's known vulnerabilities of one release: ("audited", vulns) or ("held back", [])."""
    release = _get_json(client, f"{PYPI}/{name}/{version}/json")
    if release is not None:  # the release endpoint: what pip-audit's PyPI service asks
        data = release
    else:
        # This machine's PyPI serves the project document only, whose "vulnerabilities"
        # are those of the project's latest release.
        data = _get_json(client, f"{PYPI}/{name}/json")
        assert data is not None, f"{name} is not on PyPI"
        assert version in data["releases"], f"{name} {version} is not a release on PyPI"
        if data["info"]["version"] != version:
            return "held back", []
    vulns = [v for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")]
    return "audited", vulns


def locked_packages(project: Path) -> list[tuple[str, str]]:
    """(name, version) of every package ``uv.lock`` pins from a registry."""
    lock_file = project / "uv.lock"
    assert lock_file.is_file(), "`make install` (uv sync) left no uv.lock"
    lock = tomllib.loads(lock_file.read_text())
    pins: list[tuple[str, str]] = []
    others: list[str] = []
    for package in lock["package"]:
        if "registry" in package.get("source", {}):
            pins.append((package["name"], package["version"]))
        else:
            others.append(package["name"])
    # Only the project itself may come from elsewhere (it is `editable = "."`).
    assert others == ["contract-api"], f"packages not from the registry: {others}"
    return pins


def test_locked_dependencies_have_no_known_vulnerability(variant: Variant, project: Path) -> None:
    """Every release in the project's uv.lock, against PyPI's vulnerability data.

    PyPI's JSON API reports the known vulnerabilities (the PyPA advisory database / OSV) of a
    release at /pypi/<name>/<version>/json; pip-audit's default service reads exactly that.
    This machine's (and CI's) PyPI serves only /pypi/<name>/json, whose vulnerabilities are
    those of the latest release, and OSV is unreachable, so pip-audit would skip every
    package. This test asks the release endpoint first (where PyPI answers it, that is the
    whole audit), else the project endpoint when the locked release is the latest one:
    the same data. A fresh render locks the latest releases its bounds allow; the few a
    bound holds back (HELD_BACK) cannot be looked up here, and a new one fails the test so
    that someone decides about it.

    Run on every sample variant: the lock depends on the framework and on every option
    (async drivers, PostgreSQL drivers, the admin), and lookups are cached per process.
    """
    pins = locked_packages(project)
    assert len(pins) > 10, f"suspiciously few locked packages: {pins}"
    with (
        httpx.Client(timeout=60, follow_redirects=True) as client,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        results = list(pool.map(lambda pin: (pin, audit(client, *pin)), pins))
    vulnerable = [
        f"{name} {version}: {v['id']} ({', '.join(v.get('aliases') or [])}) "
        f"fixed in {', '.join(v.get('fixed_in') or []) or 'no release'}: "
        f"{(v.get('summary') or v.get('details') or '').strip()[:200]}"
        for (name, version), (_, vulns) in results
        for v in vulns
    ]
    assert not vulnerable, (
        f"{variant.id}: known vulnerabilities in uv.lock (raise the dependency's lower bound "
        "in the template):\n" + "\n".join(vulnerable)
    )
    held_back = sorted(name for (name, _), (status, _) in results if status == "held back")
    unexplained = [name for name in held_back if held_back_reason(name) is None]
    assert not unexplained, (
        f"{variant.id}: locked below PyPI's latest release, so not auditable here: "
        f"{unexplained}. Lift the bound that holds each back, or add it to HELD_BACK with "
        "the reason."
    )


def test_the_audit_reports_a_known_vulnerability() -> None:
    """The audit above reports what PyPI knows: ecdsa's latest release carries the Minerva
    timing attack (CVE-2024-23342), which its maintainers consider out of scope and do not fix.
    """
    with httpx.Client(timeout=60, follow_redirects=True) as client:
        project = _get_json(client, f"{PYPI}/ecdsa/json")
        status, vulns = audit(client, "ecdsa", project["info"]["version"])
    assert status == "audited"
    ids = {i for v in vulns for i in [v["id"], *(v.get("aliases") or [])]}
    assert "CVE-2024-23342" in ids, vulns


# --------------------------------------------------------------------------- Django


def check_deploy(project: Path, tmp_path: Path, **env: str) -> str:
    proc = harness.run(
        [".venv/bin/python", "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=project,
        env={
            "ENVIRONMENT": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.db'}",
            **env,
        },
        timeout=120,
    )
    assert proc.returncode == 0, f"`manage.py check --deploy` reports:\n{proc.stdout}"
    return proc.stdout.strip()


@harness.only_if(lambda v: v.framework == "drf")
def test_django_check_deploy_is_clean(project: Path, tmp_path: Path) -> None:
    """No warning at all in production settings.

    By default TLS ends at a proxy and health probes speak plain HTTP, so Django does not
    redirect to HTTPS and only security.W008 (SECURE_SSL_REDIRECT off) is silenced; with
    SECURE_SSL_REDIRECT=true nothing is.
    """
    assert check_deploy(project, tmp_path) == "System check identified no issues (1 silenced)."
    assert (
        check_deploy(project, tmp_path, SECURE_SSL_REDIRECT="true")
        == "System check identified no issues (0 silenced)."
    )
