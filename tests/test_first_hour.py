"""A newcomer's first hour: what a fresh render says and does before any code is written.

Render-only checks run on each framework's default variant (and its admin variant);
``make install`` without uv runs once; the Renovate configuration is checked with
Renovate's own validator, installed once from npm into a cache directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import harness
import pytest
import yaml
from matrix import AVAILABLE, Variant, default_variant

FRAMEWORK_NAMES = {
    "fastapi": "FastAPI",
    "drf": "Django REST Framework",
    "flask": "Flask",
    "bottle": "Bottle",
    "pyramid": "Pyramid",
}
# The newest Renovate whose package.json accepts Node 20 (41.x and later need Node 22).
RENOVATE_VERSION = "39.264.1"
RENOVATE_CACHE = Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "copier-api-starter"
)

VARIANTS = [default_variant(framework) for framework in AVAILABLE]
POSTGRES_VARIANTS = [Variant(framework, database="postgresql") for framework in AVAILABLE]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each framework's default variant and its PostgreSQL variant, rendered once."""
    base = tmp_path_factory.mktemp("first-hour")
    return {v.id: harness.render(v, base / v.id) for v in VARIANTS + POSTGRES_VARIANTS}


# --------------------------------------------------------------------------- Makefile


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_makefile_recipes_start_on_the_target_line(
    variant: Variant, rendered: dict[str, Path]
) -> None:
    text = (rendered[variant.id] / "Makefile").read_text()
    stray = re.findall(r"^([a-z-]+):.*\n[ \t]*\n\t", text, re.MULTILINE)
    assert not stray, f"a blank line between the target line and the recipe of {stray}"
    assert not text.endswith("\n\n"), "blank lines at the end of the Makefile"


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_make_help_shows_the_address_it_means(variant: Variant, rendered: dict[str, Path]) -> None:
    project = rendered[variant.id]
    shown = harness.make(project, "help")
    assert "$(" not in shown, shown
    assert "auto-reload on 127.0.0.1:8000\n" in shown, shown
    assert "production server on 127.0.0.1:8000 with 2 workers" in shown, shown
    (project / ".env").write_text("PORT=9000\n")
    try:
        shown = harness.make(project, "help", env={"HOST": "0.0.0.0", "WEB_CONCURRENCY": "4"})
    finally:
        (project / ".env").unlink()
    assert "production server on 0.0.0.0:9000 with 4 workers" in shown, shown


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_tools_stay_out_of_git_and_the_image(variant: Variant, rendered: dict[str, Path]) -> None:
    project = rendered[variant.id]
    assert ".tools/" in (project / ".gitignore").read_text().splitlines()
    assert ".tools" in (project / ".dockerignore").read_text().splitlines()


def test_make_install_without_uv_bootstraps_it_and_locks(tmp_path: Path) -> None:
    """No uv on PATH: uv is installed into .tools/ from PyPI, then `uv sync` writes uv.lock."""
    project = harness.render(default_variant("flask"), tmp_path / "project")
    system = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    path = ":".join(d for d in system if not Path(d, "uv").exists())
    assert shutil.which("python3", path=path), f"no python3 on {path}"
    output = harness.make(project, "install", env={"PATH": path}, timeout=600)
    assert (project / "uv.lock").is_file(), output
    assert (project / ".tools" / "bin" / "uv").is_file(), output
    assert f"{project}/.tools/bin/uv sync" in output, output
    assert (project / ".venv" / "bin" / "pytest").is_file(), output
    # The closing message's next step works: uv.lock is there to commit, .tools/ is ignored.
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    added = subprocess.run(
        ["git", "add", "--dry-run", "-A"], cwd=project, check=True, capture_output=True, text=True
    ).stdout
    assert "add 'uv.lock'" in added, added
    assert ".tools/" not in added and ".venv/" not in added, added


# --------------------------------------------------------------------------- database


@pytest.mark.parametrize("variant", POSTGRES_VARIANTS, ids=str)
def test_a_postgresql_project_defaults_to_the_database_compose_starts(
    variant: Variant, rendered: dict[str, Path]
) -> None:
    project = rendered[variant.id]
    db = yaml.safe_load((project / "compose.yaml").read_text())["services"]["db"]
    env = db["environment"]
    (published,) = db["ports"]
    host, port, _ = published.split(":")
    expected = (
        f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}"
        f"@{host}:{port}/{env['POSTGRES_DB']}"
    )
    package = project / "src" / variant.package_name
    if variant.framework == "drf":
        code = (package / "settings.py").read_text()
        assert f'DEFAULT_DATABASE_URL = "{expected}"' in code
    else:
        code = (package / "config.py").read_text()
        assert f'database_url: str = "{expected}"' in code
    assert "sqlite" not in (project / ".env.example").read_text()
    assert f"DATABASE_URL={expected}\n" in (project / ".env.example").read_text()
    readme = (project / "README.md").read_text()
    assert f"| `DATABASE_URL` | `{expected}` |" in readme
    assert "sqlite:///./app.db" not in readme


# --------------------------------------------------------------------------- README


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_readme_names_the_frameworks_properly(variant: Variant, rendered: dict[str, Path]) -> None:
    readme = (rendered[variant.id] / "README.md").read_text()
    answers = yaml.safe_load((rendered[variant.id] / ".copier-answers.yml").read_text())
    line = next(line for line in readme.splitlines() if line.startswith("Recommended framework:"))
    recommended = re.sub(r"\s*\(.*", "", line.removeprefix("Recommended framework: "))
    assert recommended in FRAMEWORK_NAMES.values(), line
    assert f"Built on **{FRAMEWORK_NAMES[answers['framework']]}**" in readme
    if "was chosen instead" in line:
        assert line.endswith(f"; {FRAMEWORK_NAMES[answers['framework']]} was chosen instead."), line
    assert "make fuzz" in readme
    assert "`.tools/`" in readme and "uv.lock" in readme


def test_drf_readme_states_the_busy_timeout_of_its_settings(rendered: dict[str, Path]) -> None:
    project = rendered[default_variant("drf").id]
    settings = (project / "src" / "contract_api" / "settings.py").read_text()
    (seconds,) = re.findall(r"^SQLITE_BUSY_TIMEOUT = (\d+)$", settings, re.MULTILINE)
    readme = (project / "README.md").read_text()
    assert re.findall(r"(\d+) s busy timeout", readme) == [seconds]


# --------------------------------------------------------------------------- users and tokens


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_a_new_project_says_how_to_sign_in(variant: Variant, rendered: dict[str, Path]) -> None:
    """A new project has users and tokens (the default): its quick start creates a user
    before `make dev`, `make help` lists `createuser`, `.env.example` names the token
    settings, and the development key is long enough to sign tokens (32 bytes)."""
    assert variant.needs_auth
    project = rendered[variant.id]
    readme = (project / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start") :]
    quick_start = quick_start[: quick_start.index("```", quick_start.index("```") + 3)]
    steps = [line.split("#")[0].strip() for line in quick_start.splitlines()]
    assert steps.index("make migrate") < steps.index("make createuser") < steps.index("make dev")
    assert "Authorization: Bearer" in readme
    assert "createuser" in harness.make(project, "help")
    env_example = (project / ".env.example").read_text().splitlines()
    assert "ACCESS_TOKEN_MINUTES=30" in env_example
    assert "ALLOW_SIGNUP=false" in env_example
    settings = "settings.py" if variant.framework == "drf" else "config.py"
    code = (project / "src" / variant.package_name / settings).read_text()
    (dev_key,) = re.findall(r'^DEV_SECRET_KEY = "([^"]*)"', code, re.MULTILINE)
    assert len(dev_key.encode()) >= 32, dev_key


# --------------------------------------------------------------------------- Renovate


def _renovate_validator() -> Path:
    """renovate-config-validator from the npm package, installed once into the cache."""
    npm = shutil.which("npm")
    node = shutil.which("node")
    assert npm and node, (
        "the Renovate check needs Node.js 20+ and npm on PATH (Debian: apt-get install nodejs npm)"
    )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    assert major >= 20, f"renovate {RENOVATE_VERSION} needs Node.js 20+, found {version.stdout}"
    target = RENOVATE_CACHE / f"renovate-{RENOVATE_VERSION}"
    validator = target / "node_modules" / ".bin" / "renovate-config-validator"
    if not validator.is_file():
        staging = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        command = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund"]
        installed = subprocess.run(
            [*command, "--loglevel=error", f"renovate@{RENOVATE_VERSION}"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert installed.returncode == 0, f"npm install renovate failed:\n{installed.stderr}"
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return validator


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_renovate_config_is_valid_and_updates_locks_and_template(
    variant: Variant, rendered: dict[str, Path]
) -> None:
    project = rendered[variant.id]
    config_file = project / ".github" / "renovate.json"
    config = json.loads(config_file.read_text())
    assert config["lockFileMaintenance"]["enabled"] is True
    managers = {m for rule in config["packageRules"] for m in rule.get("matchManagers", [])}
    assert {"pep621", "copier"} <= managers
    assert "enabledManagers" not in config, "copier, pep621 and the rest stay enabled"
    checked = subprocess.run(
        [str(_renovate_validator()), "--strict", str(config_file)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Config validated successfully" in checked.stdout, checked.stdout
