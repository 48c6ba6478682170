"""``copier update`` of generated projects, on a real git history of the template.

The template's working tree is committed into a temporary repository and tagged
``v1.0.0``; ``v1.1.0`` adds a README paragraph and a new file; ``v2.0.0`` renames
the answer ``author_name`` with a ``_migrations`` entry (``tests/update_history.py``).
Each project is copied from a tag and committed in its own repository, then a user
changes it and commits, and ``copier update`` runs the way the README tells a team to.

For every available framework:

- the user's edits, new files and deletions survive an update, the template's change
  arrives, and nothing is left half-merged where the two did not touch the same lines;
- where both touched the same lines, the conflict is inline, as Copier documents;
- an answer changed during an update brings what it adds and keeps the user's work;
- a framework change is refused before anything is written;
- a bad answer fails with the validator's message and leaves files and git as they were;
- a renamed answer travels through the ``_migrations`` entry (with ``--trust``);
- the updated project passes ``make test`` and ``make lint`` after each update
  (the default variant; installs are the slow part, so only there).

Tests of one framework share an xdist group, so its template history and base project
are built once per worker.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import copier
import copier.errors
import harness
import pexpect
import pytest
import update_history as uh
import yaml
from matrix import ADMIN_CAPABLE, AVAILABLE, FRAMEWORKS, Variant

PACKAGE = "contract_api"

USER_TITLE = "# Contract API, as our team runs it"
USER_MODULE = f"src/{PACKAGE}/team_extras.py"
USER_MODULE_TEXT = '''"""Our own code, next to the generated code."""


def greeting(name: str) -> str:
    """Say hello."""
    return f"Hello, {name}!"
'''
USER_TEST = "tests/test_team_extras.py"
USER_TEST_TEXT = f'''"""Our own test, run by make test."""

from {PACKAGE}.team_extras import greeting


def test_greeting() -> None:
    assert greeting("team") == "Hello, team!"
'''
USER_DELETED = ".pre-commit-config.yaml"
USER_CLOSING_LINE = "Our team's own closing line."


def _params() -> list[object]:
    return [
        pytest.param(fw, id=fw, marks=pytest.mark.xdist_group(f"update-{fw}")) for fw in AVAILABLE
    ]


framework_param = pytest.mark.parametrize("framework", _params())


# --------------------------------------------------------------------------- fixtures

_base_projects: dict[str, Path] = {}


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template's git history (v1.0.0, v1.1.0, v2.0.0), once per worker."""
    return uh.template_history(tmp_path_factory.mktemp("update-template"))


@pytest.fixture
def project(
    framework: str, template_repo: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> Path:
    """The framework's default variant copied from v1.0.0 and committed (a fresh clone
    of one project per framework and worker, since a copy is the slow part)."""
    if framework not in _base_projects:
        base = tmp_path_factory.mktemp(f"update-base-{framework}")
        _base_projects[framework] = uh.generate(
            template_repo, Variant(framework), base / "contract-api"
        )
    dest = tmp_path / "contract-api"
    shutil.copytree(_base_projects[framework], dest, symlinks=True)
    return dest


def user_edits(project: Path) -> None:
    """What a team does to a fresh project: edit a generated file, add files, delete one."""
    readme = project / "README.md"
    lines = readme.read_text().splitlines(keepends=True)
    assert lines[0].startswith("# "), lines[0]
    lines[0] = USER_TITLE + "\n"
    readme.write_text("".join(lines))
    (project / USER_MODULE).write_text(USER_MODULE_TEXT)
    (project / USER_TEST).write_text(USER_TEST_TEXT)
    (project / USER_DELETED).unlink()
    uh.commit(project, "Our changes")


def answers(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def assert_user_work_kept(project: Path) -> None:
    assert (project / "README.md").read_text().splitlines()[0] == USER_TITLE
    assert (project / USER_MODULE).read_text() == USER_MODULE_TEXT
    assert (project / USER_TEST).read_text() == USER_TEST_TEXT
    assert not (project / USER_DELETED).exists(), f"the update brought back {USER_DELETED}"


def assert_cleanly_merged(project: Path) -> None:
    assert uh.rejects(project) == [], "the update left .rej files"
    assert uh.conflict_markers(project) == [], "the update left conflict markers"
    assert uh.git(project, "ls-files", "--unmerged") == "", "the update left unmerged files"


def assert_template_change_arrived(project: Path) -> None:
    assert uh.README_ADDITION in (project / "README.md").read_text()
    assert (project / uh.NEW_FILE).read_text().startswith("# Upgrading Contract API\n")


def other_framework(framework: str) -> str:
    """Another framework to switch to: an available one if there is one."""
    others = [fw for fw in AVAILABLE if fw != framework] or [
        fw for fw in FRAMEWORKS if fw != framework
    ]
    return others[0]


# --------------------------------------------------------------------------- tests


@framework_param
def test_update_keeps_user_work_and_brings_the_template_change(
    framework: str, project: Path
) -> None:
    user_edits(project)

    uh.update(project, vcs_ref="v1.1.0")

    assert_template_change_arrived(project)
    assert_user_work_kept(project)
    assert_cleanly_merged(project)
    recorded = answers(project)
    assert recorded["_commit"] == "v1.1.0"
    assert recorded["framework"] == framework
    # Copied with users and tokens (a new project's default): the recorded answer wins.
    assert recorded["needs_auth"] is True
    # Nothing else changed: only the template's change and the answers file are new.
    changed = uh.git(project, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(line[3:] for line in changed) == sorted(
        [".copier-answers.yml", "README.md", uh.NEW_FILE]
    ), changed


@framework_param
def test_same_lines_changed_on_both_sides_conflict_inline(framework: str, project: Path) -> None:
    user_edits(project)
    readme = project / "README.md"
    readme.write_text(readme.read_text().rstrip("\n") + f"\n\n{USER_CLOSING_LINE}\n")
    uh.commit(project, "Our closing line")

    uh.update(project, vcs_ref="v1.1.0")

    text = readme.read_text()
    # Copier's documented inline conflict: both sides between markers ...
    start = text.index("<<<<<<< before updating\n")
    middle = text.index("\n=======\n", start)
    end = text.index("\n>>>>>>> after updating", middle)
    assert USER_CLOSING_LINE in text[start:middle]
    assert uh.README_ADDITION in text[middle:end]
    # ... and the file is unmerged in git, so `git status` lists it and a commit
    # is refused until it is resolved.
    unmerged = uh.git(project, "diff", "--name-only", "--diff-filter=U").split()
    assert unmerged == ["README.md"]
    assert uh.conflict_markers(project) == ["README.md"]
    assert uh.rejects(project) == []
    # The rest of the update applied: the user's other work and the new file.
    assert_user_work_kept(project)
    assert (project / uh.NEW_FILE).is_file()


@framework_param
def test_answer_change_during_update_adds_what_it_brings(framework: str, project: Path) -> None:
    user_edits(project)
    compose_before = (project / "compose.yaml").read_text()
    assert "postgres" not in compose_before

    # Passing the recorded framework again is not a change: no refusal.
    uh.update(project, vcs_ref="v1.1.0", data={"database": "postgresql", "framework": framework})

    recorded = answers(project)
    assert recorded["database"] == "postgresql"
    assert "postgres" in (project / "compose.yaml").read_text()
    assert "postgresql" in (project / ".env.example").read_text()
    assert_template_change_arrived(project)
    assert_user_work_kept(project)
    assert_cleanly_merged(project)


@framework_param
def test_framework_change_is_refused_and_nothing_is_touched(
    framework: str, project: Path, template_repo: Path
) -> None:
    user_edits(project)
    target = other_framework(framework)
    before = uh.state(project)

    with pytest.raises(ValueError) as excinfo:
        uh.update(project, vcs_ref="v1.1.0", data={"framework": target})

    message = str(excinfo.value)
    assert message.startswith(f"Invalid choice for 'framework': this is a {framework} project")
    assert "an update cannot switch it (it would delete your work)" in message
    assert (
        f"start a new project instead: copier copy --data framework={target} "
        f"{template_repo} ../contract-api-{target}" in message
    ), message
    assert uh.state(project) == before


@framework_param
@pytest.mark.timeout(180)
def test_framework_change_refused_in_the_prompt(
    framework: str, project: Path, tmp_path: Path
) -> None:
    """In an interactive ``copier update`` the other frameworks are greyed out, with the reason."""
    from test_prompt import ROWS, Terminal

    target = other_framework(framework)
    # The questions before `framework` keep their recorded answers (passed as data, so
    # the prompt starts at `framework`); the data file lives outside the project.
    recorded = answers(project)
    order = list(yaml.safe_load((Path(str(recorded["_src_path"])) / "copier.yml").read_text()))
    earlier = {k: recorded[k] for k in order[: order.index("framework")] if k in recorded}
    data_file = tmp_path / "earlier-answers.yml"
    data_file.write_text(yaml.safe_dump(uh.copier_data(earlier)))
    before = uh.state(project)
    settings = tmp_path / "copier-settings.yml"
    settings.write_text("{}\n")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "copier", "update", "--vcs-ref", "v1.1.0", "--data-file", str(data_file)],
        cwd=str(project),
        env={
            **os.environ,
            **uh.GIT_ENV,
            "TERM": "xterm",
            "LANG": "C.UTF-8",
            "COLUMNS": "250",
            "LINES": str(ROWS),
            "COPIER_SETTINGS_PATH": str(settings),
            "PROMPT_TOOLKIT_NO_CPR": "1",
        },
        dimensions=(ROWS, 250),
        encoding="utf-8",
        codec_errors="replace",
        timeout=60,
    )
    try:
        term = Terminal(child)
        term.expect("Web framework.", timeout=90)
        term.expect(f"(this is a {framework} project and an update cannot switch it")
        assert f"copier copy --data framework={target} " in term.visible()
        term.send("\x03")  # Ctrl-C: the user gives up
        assert term.finish() != 0
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert uh.state(project) == before


@framework_param
def test_bad_answer_during_update_changes_nothing(
    framework: str, project: Path, template_repo: Path, tmp_path: Path
) -> None:
    user_edits(project)
    before = uh.state(project)

    for bad in ({"project_slug": "Not A Slug"}, {"database": "mysql"}):
        # The message a fresh copy gives for the same answer: the validator's own.
        with pytest.raises(ValueError) as copy_error:
            copier.run_copy(
                str(template_repo),
                str(tmp_path / "fresh"),
                data=uh.copier_data({"framework": framework, **bad}),
                defaults=True,
                vcs_ref="v1.1.0",
                quiet=True,
            )
        with pytest.raises(ValueError) as update_error:
            uh.update(project, vcs_ref="v1.1.0", data=bad)
        assert str(update_error.value) == str(copy_error.value)
        assert next(iter(bad)) in str(update_error.value)
        assert uh.state(project) == before, f"{bad} changed the project"


@framework_param
def test_update_across_a_renamed_answer(
    framework: str, template_repo: Path, tmp_path: Path
) -> None:
    project = uh.generate(template_repo, Variant(framework), tmp_path / "contract-api", "v1.1.0")
    user_edits(project)
    author = str(Variant(framework).answers["author_name"])
    assert answers(project)["author_name"] == author
    before = uh.state(project)

    # The migration runs a command: without --trust Copier refuses, and writes nothing.
    with pytest.raises(copier.errors.UnsafeTemplateError):
        uh.update(project, vcs_ref="v2.0.0")
    assert uh.state(project) == before

    uh.update(project, vcs_ref="v2.0.0", unsafe=True)

    recorded = answers(project)
    assert recorded["_commit"] == "v2.0.0"
    assert recorded["maintainer_name"] == author
    assert "author_name" not in recorded
    # The renamed answer still reaches the files that use it.
    assert author in (project / "pyproject.toml").read_text()
    assert uh.git(project, "diff", "--name-only").split() == [".copier-answers.yml"]
    assert_user_work_kept(project)
    assert_cleanly_merged(project)


@framework_param
@pytest.mark.slow
def test_updated_project_passes_make_test_and_lint(framework: str, project: Path) -> None:
    """The default variant, updated twice: to v1.1.0, then with an answer changed."""
    user_edits(project)

    uh.update(project, vcs_ref="v1.1.0")
    assert_cleanly_merged(project)
    harness.make(project, "install", timeout=harness.INSTALL_TIMEOUT)
    harness.make(project, "test")
    harness.make(project, "lint")
    # As the README says: commit the update and the uv.lock that `make install` wrote;
    # the next update needs a clean tree.
    uh.commit(project, "Update to template v1.1.0")

    # One answer change that brings code: the admin UI where the framework has one.
    if framework in ADMIN_CAPABLE:
        change: dict[str, object] = {"needs_admin": True}
    else:
        change = {"database": "postgresql"}
    uh.update(project, vcs_ref="v1.1.0", data=change)
    assert_cleanly_merged(project)
    assert_user_work_kept(project)
    for key, value in change.items():
        assert answers(project)[key] == value
    if "needs_admin" in change:
        assert "createadmin" in harness.make_targets(project)
    harness.make(project, "install", timeout=harness.INSTALL_TIMEOUT)
    harness.make(project, "test")
    harness.make(project, "lint")
