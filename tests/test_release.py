"""`make release VERSION=x.y.z`: the annotated tag that `--vcs-ref vX.Y.Z` and
`copier update` read, made only once CHANGELOG.md has the version's entry.

Run in a throwaway clone of the working tree (a fresh clone has no tags).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import copier
import pytest
from matrix import TEMPLATE_ROOT

IDENTITY = {
    "GIT_AUTHOR_NAME": "Release Test",
    "GIT_AUTHOR_EMAIL": "release@example.com",
    "GIT_COMMITTER_NAME": "Release Test",
    "GIT_COMMITTER_EMAIL": "release@example.com",
}


def run(cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **IDENTITY}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The working tree committed to a new repository: a clone with no tag."""
    listed = run(
        TEMPLATE_ROOT, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"
    )
    repo = tmp_path / "copier-api-starter"
    for rel in filter(None, listed.stdout.split("\0")):
        if (TEMPLATE_ROOT / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_ROOT / rel, repo / rel)
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "clone"]):
        assert run(repo, "git", *command).returncode == 0
    assert run(repo, "git", "tag").stdout == ""
    return repo


def test_release_refuses_a_version_without_a_changelog_entry(clone: Path) -> None:
    result = run(clone, "make", "release", "VERSION=9.9.9")
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == (
        "make release: CHANGELOG.md has no entry for 9.9.9; "
        "add a section headed: ## 9.9.9 (tag `v9.9.9`)"
    )
    assert run(clone, "git", "tag").stdout == ""


def test_release_refuses_a_malformed_version(clone: Path) -> None:
    result = run(clone, "make", "release", "VERSION=v1.0")
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == (
        "make release: give the version as VERSION=x.y.z, e.g. make release VERSION=0.3.0"
    )


def test_release_refuses_uncommitted_changes(clone: Path) -> None:
    (clone / "README.md").write_text("changed\n")
    result = run(clone, "make", "release", "VERSION=0.2.0")
    assert result.stderr.splitlines()[0] == (
        "make release: commit or stash your changes first (the tag names a commit)"
    )
    assert run(clone, "git", "tag").stdout == ""


def test_release_makes_the_annotated_tag_copier_reads(clone: Path, tmp_path: Path) -> None:
    result = run(clone, "make", "release", "VERSION=0.2.0")
    assert result.returncode == 0, result.stderr
    assert "Tagged v0.2.0. Publish it with: git push origin v0.2.0" in result.stdout
    assert run(clone, "git", "cat-file", "-t", "v0.2.0").stdout.strip() == "tag"  # annotated
    message = run(clone, "git", "tag", "-l", "--format=%(contents:subject)", "v0.2.0").stdout
    assert message.strip() == "copier-api-starter v0.2.0"
    head = run(clone, "git", "rev-parse", "HEAD").stdout
    assert run(clone, "git", "rev-parse", "v0.2.0^{commit}").stdout == head
    again = run(clone, "make", "release", "VERSION=0.2.0")
    assert again.stderr.splitlines()[0] == "make release: tag v0.2.0 exists already"
    # The README's command now works on this clone.
    dst = tmp_path / "my-api"
    copier.run_copy(str(clone), str(dst), defaults=True, vcs_ref="v0.2.0", quiet=True)
    assert "_commit: v0.2.0\n" in (dst / ".copier-answers.yml").read_text()
