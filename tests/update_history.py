"""A real git history of the template, and generated projects in git, for the update tests.

``template_history(base)`` copies the template's working tree (what ``harness.render``
renders: tracked and untracked, not ignored files) into ``base/template``, a git
repository with three tags:

- ``v1.0.0``: the working tree as it is;
- ``v1.1.0``: a template release: a paragraph appended to every generated README
  (``README_ADDITION``) and a new generated file (``NEW_FILE``);
- ``v2.0.0``: a release that renames the answer ``author_name`` to ``maintainer_name``
  and ships the ``_migrations`` entry that renames it in old ``.copier-answers.yml``
  files (``author_name`` stays a computed value, so the framework templates need
  no change). Updating across it needs ``unsafe=True`` (``--trust``).

``generate(template, variant, dest)`` runs ``copier copy`` from a tag, then commits the
project in its own repository, as a team does after ``copier copy``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import harness
from harness import TEMPLATE_ROOT
from matrix import AVAILABLE, FRAMEWORKS, Variant

README_ADDITION = "Release v1.1.0 of the template added this paragraph."
NEW_FILE = "docs/UPGRADING.md"
NEW_FILE_TEXT = "# Upgrading {{ project_name }}\n\nSee CHANGELOG.md of the template.\n"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Update Tests",
    "GIT_AUTHOR_EMAIL": "update-tests@example.com",
    "GIT_COMMITTER_NAME": "Update Tests",
    "GIT_COMMITTER_EMAIL": "update-tests@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}

# v2.0.0: the rename, as a template author writes it in copier.yml.
RENAMED_QUESTION = """maintainer_name:
  type: str
  help: "Maintainer name (pyproject.toml); leave empty to omit"
  default: ""
  validator: >-
    {% from "hooks/validators.jinja" import one_line_error %}{{ one_line_error(maintainer_name) }}

# Renamed to maintainer_name in v2.0.0; the templates still read author_name.
author_name:
  type: str
  default: "{{ maintainer_name }}"
  when: false
"""
OLD_QUESTION_START = "author_name:\n"
MIGRATION = """
# v2.0.0 renamed the answer author_name to maintainer_name: rename it in the
# project's answers file before the update reads it.
_migrations:
  - version: v2.0.0
    when: "{{ _stage == 'before' }}"
    command:
      - "{{ _copier_python }}"
      - "-c"
      - >-
        import pathlib, re, sys;
        p = pathlib.Path(sys.argv[1]);
        p.write_text(re.sub(r'^author_name:', 'maintainer_name:', p.read_text(), flags=re.M))
      - "{{ _copier_conf.answers_file }}"
"""


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; returns stdout, raises on failure."""
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def _commit_all(repo: Path, message: str, tag: str | None = None) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    if tag:
        git(repo, "tag", tag)


def _working_tree_files() -> list[str]:
    out = git(TEMPLATE_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return sorted({f for f in out.split("\0") if f and (TEMPLATE_ROOT / f).is_file()})


def template_snapshot(base: Path, earlier: tuple[str, str] | None = None) -> Path:
    """The template's working tree as a repository, its last commit tagged v1.0.0.

    ``earlier=(commit, tag)``: the tree of that commit of this repository comes first,
    tagged ``tag`` (a project made by an earlier version of the template).
    """
    repo = base / "template"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    if earlier:
        commit, tag = earlier
        archive = base / "earlier.tar"
        git(TEMPLATE_ROOT, "archive", "--format=tar", "-o", str(archive), commit)
        shutil.unpack_archive(archive, repo, "tar")
        _commit_all(repo, f"{tag}: the template at {commit}", tag)
        git(repo, "rm", "-q", "-r", ".")
    for rel in _working_tree_files():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE_ROOT / rel, target)
    _commit_all(repo, "v1.0.0: the template as it is", "v1.0.0")
    return repo


def template_history(base: Path) -> Path:
    """Build the template repository with tags v1.0.0, v1.1.0 and v2.0.0; returns its path."""
    repo = template_snapshot(base)

    readme = repo / "templates" / "_shared" / "README.md.jinja"
    readme.write_text(readme.read_text().rstrip("\n") + f"\n\n{README_ADDITION}\n")
    for framework in FRAMEWORKS:
        new = repo / "templates" / framework / (NEW_FILE + ".jinja")
        new.parent.mkdir(parents=True, exist_ok=True)
        new.write_text(NEW_FILE_TEXT)
    _commit_all(repo, "v1.1.0: a README paragraph and a new file", "v1.1.0")

    copier_yml = repo / "copier.yml"
    text = copier_yml.read_text()
    start = text.index(OLD_QUESTION_START)
    end = text.index("\nauthor_email:", start) + 1
    text = text[:start] + RENAMED_QUESTION + "\n" + text[end:] + MIGRATION
    copier_yml.write_text(text)
    _commit_all(repo, "v2.0.0: rename author_name to maintainer_name", "v2.0.0")
    return repo


def copier_data(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Data every copy and update passes: the frameworks this suite runs, then ``extra``."""
    data: dict[str, Any] = {"available_frameworks": list(AVAILABLE)}
    data.update(extra or {})
    return data


def generate(template: Path, variant: Variant, dest: Path, vcs_ref: str = "v1.0.0") -> Path:
    """``copier copy`` of ``variant`` from ``vcs_ref``, committed in a new repository."""
    import copier
    import copier.errors

    with warnings.catch_warnings():
        # The framework refusal reads the project's answers file only during an
        # update: a copy must not warn that it is missing.
        warnings.simplefilter("error", copier.errors.MissingFileWarning)
        copier.run_copy(
            str(template),
            str(dest),
            data=copier_data(variant.answers),
            defaults=True,
            vcs_ref=vcs_ref,
            quiet=True,
            unsafe=False,
        )
    git(dest, "init", "-q", "-b", "main")
    _commit_all(dest, "Initial commit from the template")
    return dest


def update(project: Path, **kwargs: Any) -> None:
    """``copier update`` of ``project`` as a team runs it: defaults, overwrite, no trust."""
    import copier
    import copier.errors

    kwargs.setdefault("unsafe", False)
    kwargs["data"] = copier_data(kwargs.get("data"))
    with warnings.catch_warnings():
        # Nor may the scratch copies an update renders (update.jinja).
        warnings.simplefilter("error", copier.errors.MissingFileWarning)
        copier.run_update(str(project), defaults=True, overwrite=True, quiet=True, **kwargs)


def commit(project: Path, message: str) -> None:
    _commit_all(project, message)


def install_and_migrate(project: Path, database_url: str) -> None:
    """What a team does first in a copied project: ``make install`` (its lock committed, so
    that a later ``copier update`` starts from a clean tree), then ``make migrate``."""
    harness.make(project, "install")
    commit(project, "Lock dependencies")
    harness.make(project, "migrate", env={"DATABASE_URL": database_url})


def state(project: Path) -> dict[str, Any]:
    """Everything an update must not change when it fails: HEAD, status, index, files."""
    files = {}
    for path in sorted(project.rglob("*")):
        rel = path.relative_to(project)
        if rel.parts[0] in {".git", ".venv"} or not path.is_file():
            continue
        files[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "HEAD": git(project, "rev-parse", "HEAD").strip(),
        "status": git(project, "status", "--porcelain", "--ignored"),
        "index": git(project, "ls-files", "--stage"),
        "files": files,
    }


def conflict_markers(project: Path) -> list[str]:
    """Files (outside .git) that contain a line starting with a git conflict marker."""
    found = []
    for path in sorted(project.rglob("*")):
        rel = path.relative_to(project)
        if rel.parts[0] in {".git", ".venv"} or not path.is_file():
            continue
        try:
            lines = path.read_text().splitlines()
        except UnicodeDecodeError:
            continue
        if any(line.startswith(("<<<<<<< ", ">>>>>>> ")) for line in lines):
            found.append(str(rel))
    return found


def rejects(project: Path) -> list[str]:
    return sorted(
        str(p.relative_to(project))
        for p in project.rglob("*.rej")
        if p.relative_to(project).parts[0] != ".venv"
    )
