"""Every reference to the template's own documents resolves (docs/README.md).

Files cite the spec as ``docs/CONTRACT.md section 3`` (also ``sections 3 and 4``,
``sections 2-6``, ``sections 7 to 10``); inside docs/ a bare ``CONTRACT.md`` is
the sibling page. Each named page must exist and have a ``## N.`` heading for
each section named. A generated project documents itself, so no file that is
rendered into one cites these documents.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from matrix import TEMPLATE_ROOT

DOCS = TEMPLATE_ROOT / "docs"
PAGES = ("CONTRACT", "QUESTIONS", "LAYOUT")
SKIP = {"uv.lock", "tests/test_docs.py"}  # this file names the pattern itself
TEXT_SUFFIXES = {".md", ".py", ".yml", ".yaml", ".jinja", ".toml", ".txt", ".lua", ""}

REFERENCE = re.compile(r"(?P<docs>docs/)?\b(?P<page>CONTRACT|QUESTIONS|LAYOUT|COPIER-NOTES)\.md")
SECTIONS = re.compile(
    r"\s*,?\s+sections?\s+(?P<first>\d+)(?:\s*(?:-|to|and)\s*(?P<last>\d+))?", re.IGNORECASE
)


def repository_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files = []
    for rel in filter(None, out.split("\0")):
        path = TEMPLATE_ROOT / rel
        if path.is_file() and path.suffix in TEXT_SUFFIXES and rel not in SKIP:
            files.append(path)
    return files


def headings(page: str) -> set[int]:
    text = (DOCS / f"{page}.md").read_text()
    return {int(n) for n in re.findall(r"^## (\d+)\. ", text, flags=re.MULTILINE)}


def references() -> list[tuple[str, str, str, list[int]]]:
    """(file, the text cited, page, sections) for every reference in the repository."""
    found = []
    for path in repository_files():
        rel = path.relative_to(TEMPLATE_ROOT).as_posix()
        text = path.read_text(errors="replace")
        for match in REFERENCE.finditer(text):
            sections: list[int] = []
            tail = SECTIONS.match(text, match.end())
            if tail:
                first = int(tail["first"])
                last = int(tail["last"]) if tail["last"] else first
                if re.search(r"\band\b", tail.group(0)):
                    sections = [first, last]
                else:
                    sections = list(range(first, last + 1))
            cited = text[match.start() : tail.end() if tail else match.end()]
            found.append((rel, " ".join(cited.split()), match["page"], sections))
    return found


REFERENCES = references()


def test_the_documents_exist_with_numbered_sections() -> None:
    assert (DOCS / "README.md").is_file()
    assert headings("CONTRACT") == set(range(1, 11))
    assert headings("QUESTIONS") == set(range(1, 8))
    assert headings("LAYOUT") == set(range(1, 6))


def test_the_repository_cites_the_documents() -> None:
    """The scan finds what it looks for (a regex that matched nothing would pass everything)."""
    cited = {(rel, text) for rel, text, _, _ in REFERENCES}
    assert ("tests/contract/test_errors.py", "docs/CONTRACT.md section 4") in cited
    assert ("copier.yml", "docs/QUESTIONS.md section 3") in cited
    assert ("tests/contract/conftest.py", "docs/CONTRACT.md sections 2-6") in cited


@pytest.mark.parametrize(
    ("rel", "cited", "page", "sections"),
    REFERENCES,
    ids=[f"{rel}:{cited}" for rel, cited, _, _ in REFERENCES],
)
def test_reference_resolves(rel: str, cited: str, page: str, sections: list[int]) -> None:
    assert page in PAGES, f"{rel}: {cited} is not a document of this repository"
    if not rel.startswith("docs/"):
        assert cited.startswith("docs/"), f"{rel}: write docs/{page}.md, the path that resolves"
    assert (DOCS / f"{page}.md").is_file()
    missing = [n for n in sections if n not in headings(page)]
    assert not missing, f"{rel}: {cited}: docs/{page}.md has no section {missing}"


def test_generated_projects_do_not_cite_the_template_documents() -> None:
    rendered = [
        (rel, cited)
        for rel, cited, _, _ in REFERENCES
        if rel.startswith("templates/") and rel != "templates/README.md"
    ]
    assert rendered == []
