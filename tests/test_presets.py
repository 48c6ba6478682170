"""Team presets (``presets/*.yml``, for ``copier copy --data-file``) stay valid and work.

- Every preset answers only real questions of copier.yml, with values those questions
  accept, in a combination the template allows (docs/QUESTIONS.md): checked for every
  preset, also those whose framework is not available yet.
- A preset of an available framework renders with ``--data-file`` semantics, records
  its answers, and its project passes ``make install``, ``make test`` (also on
  PostgreSQL when the preset says so) and ``make lint``. The installed project of the
  same variant is reused when the preset renders the same code (only README.md and
  .copier-answers.yml may differ, e.g. by ``project_size``), so the suite does not
  install one variant twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import harness
import pytest
import yaml
from harness import TEMPLATE_ROOT
from matrix import AVAILABLE, FRAMEWORKS, Variant, invalid_reason

PRESETS = sorted((TEMPLATE_ROOT / "presets").glob("*.yml"))
REQUIRED_PRESETS = {"microservice", "django-service", "prototype"}
OPTION_KEYS = (
    "needs_async",
    "use_orm",
    "needs_admin",
    "framework",
    "database",
    "needs_auth",
    "observability",
    "background_jobs",
    "kubernetes",
)
# Files in which answers that do not change code (project_size) may show.
TEXT_ONLY = {"README.md", ".copier-answers.yml"}


def load(preset: Path) -> dict[str, Any]:
    data = yaml.safe_load(preset.read_text())
    assert isinstance(data, dict), f"{preset.name}: not a mapping of answers"
    return data


def questions() -> dict[str, dict[str, Any]]:
    """The questions a user answers: copier.yml keys that are not settings or computed."""
    config = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    return {
        key: spec
        for key, spec in config.items()
        if not key.startswith("_") and isinstance(spec, dict) and spec.get("when") is not False
    }


def choice_values(spec: dict[str, Any]) -> list[Any]:
    choices = spec["choices"]
    if isinstance(choices, str):  # `framework`: built from hooks/frameworks.jinja
        return list(FRAMEWORKS)
    values = choices.values() if isinstance(choices, dict) else choices
    return [
        v["value"] if isinstance(v, dict) else v
        for v in (c[1] if isinstance(c, list) else c for c in values)
    ]


def variant_of(answers: dict[str, Any]) -> Variant:
    """The option combination a preset chooses; what it leaves out takes the default of a
    new project (``Variant``'s defaults are copier.yml's: a preset always names the
    framework, and some defaults are Jinja that only Copier evaluates)."""
    options = {k: answers[k] for k in OPTION_KEYS if k in answers}
    if not options.get("use_orm", True):
        options["needs_admin"] = False
    return Variant(**options)


def test_the_documented_presets_exist() -> None:
    assert {p.stem for p in PRESETS} >= REQUIRED_PRESETS


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_answers_are_real_questions_with_valid_values(preset: Path) -> None:
    answers = load(preset)
    qs = questions()
    unknown = sorted(set(answers) - set(qs))
    assert not unknown, f"{preset.name}: {unknown} are not questions of copier.yml"
    for key, value in answers.items():
        spec = qs[key]
        if spec["type"] == "bool":
            assert isinstance(value, bool), f"{preset.name}: {key} must be true or false"
        if "choices" in spec:
            assert value in choice_values(spec), f"{preset.name}: {key}={value!r}"
    assert answers.get("framework") in FRAMEWORKS, f"{preset.name}: name a framework"
    if not answers.get("use_orm", True):
        assert "needs_admin" not in answers, (
            f"{preset.name}: needs_admin is not asked without an ORM; leave it out"
        )
    # The combination rules of docs/QUESTIONS.md section 2 (the same as the framework validators).
    assert invalid_reason(variant_of(answers)) is None


@pytest.mark.filterwarnings("ignore::copier.errors.DirtyLocalWarning")
@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_renders_with_copier(preset: Path, tmp_path: Path) -> None:
    """Copier accepts the preset and renders it (``--pretend``: every framework enabled,
    also those not yet released, and nothing written)."""
    import copier

    dest = tmp_path / preset.stem
    worker = copier.run_copy(
        str(TEMPLATE_ROOT),
        str(dest),
        data={**load(preset), "available_frameworks": list(FRAMEWORKS)},
        defaults=True,
        vcs_ref="HEAD",
        quiet=True,
        pretend=True,
    )
    for key, value in load(preset).items():
        assert worker.answers.combined[key] == value, f"{preset.name}: {key}"
    assert not dest.exists()


def _available_presets() -> list[Any]:
    params = []
    for preset in PRESETS:
        variant = variant_of(load(preset))
        if variant.framework in AVAILABLE:
            params.append(
                pytest.param(preset, id=preset.stem, marks=pytest.mark.xdist_group(variant.id))
            )
    return params


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in {".venv", ".git"}
    }


@pytest.mark.slow
@pytest.mark.parametrize("preset", _available_presets())
def test_preset_project_passes_make_test_and_lint(
    preset: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, request: Any
) -> None:
    answers = load(preset)
    variant = variant_of(answers)
    rendered = harness.render(variant, tmp_path / "preset-api", extra_data=answers)
    recorded = yaml.safe_load((rendered / ".copier-answers.yml").read_text())
    for key, value in answers.items():
        assert recorded[key] == value, f".copier-answers.yml: {key}={recorded.get(key)!r}"

    plain = harness.render(variant, tmp_path / "variant-api")
    preset_files, variant_files = _files(rendered), _files(plain)
    code_differs = sorted(
        name
        for name in set(preset_files) | set(variant_files)
        if name not in TEXT_ONLY and preset_files.get(name) != variant_files.get(name)
    )
    if code_differs:
        # The preset renders code no matrix variant has: install it on its own.
        project = rendered
        harness.make(project, "install", timeout=harness.INSTALL_TIMEOUT)
    else:
        project = harness.installed_project(variant, tmp_path_factory)
    harness.make(project, "test")
    harness.make(project, "lint")
    if variant.database == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        harness.make(project, "test", env={"TEST_DATABASE_URL": cluster.create_database()})
