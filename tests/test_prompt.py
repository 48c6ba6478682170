"""The interactive questionnaire, driven as a person would in a terminal.

`copier copy` runs in a pseudo-terminal (pexpect) of a fixed size; the test
reads what is on screen (the output with its escape sequences removed), types
answers and keys, and finally checks the project Copier wrote. Every wait has
a deadline, and a failure prints the end of the screen.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest
import yaml
from harness import TEMPLATE_ROOT
from matrix import LABELS

WAIT = 30.0  # seconds for any one thing to appear (a cold start imports Copier and clones)
ROWS, COLUMNS = 50, 200

ENTER = "\r"
DOWN = "\x1b[B"
CLEAR_LINE = "\x15"  # Ctrl-U: the prompt pre-fills the default, so typing would append

FRAMEWORK_LABELS = LABELS  # hooks/frameworks.jinja
ASYNC_REASON = (
    "async-first (ASGI), built for many concurrent I/O-bound requests; "
    "docs and validation from type hints"
)
SMALL_REASON = "lightweight, huge ecosystem of extensions, minimal boilerplate"
# Each disabled framework its own reason (docs/QUESTIONS.md section 2).
ASYNC_DISABLED = {
    "drf": "needs_async: DRF views are synchronous",
    "bottle": "needs_async: Bottle is WSGI-only",
    "pyramid": "needs_async: Pyramid is WSGI-only",
}

# CSI sequences (colours, cursor moves), OSC (titles), charset and keypad modes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>]"
)


def available_frameworks() -> list[str]:
    """The frameworks this version of the template ships (hooks/frameworks.jinja)."""
    import matrix

    return list(matrix.AVAILABLE)


class Terminal:
    """A copier process in a pseudo-terminal, and what it has shown so far."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self.raw = ""
        self.position = 0  # in the visible text: what has been matched already

    def visible(self) -> str:
        """What was written, without escape sequences, each run of white space made one space.

        Help text wraps to fit the terminal, so text is matched across line breaks.
        """
        return " ".join(_ESCAPES.sub("", self.raw).split())

    def screen(self, lines: int = ROWS) -> str:
        """The last lines written, for failure messages."""
        text = _ESCAPES.sub("", self.raw).replace("\r", "")
        return "\n".join(text.splitlines()[-lines:])

    def _read(self, timeout: float) -> bool:
        """Read what is there; False at end of output."""
        try:
            self.raw += self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            return False
        return True

    def expect(self, text: str, timeout: float = WAIT) -> None:
        """Wait until `text` appears after what was matched last, and move past it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.visible().find(text, self.position)
            if found >= 0:
                self.position = found + len(text)
                return
            if time.monotonic() > deadline or not self._read(0.1):
                pytest.fail(
                    f"did not see {text!r} within {timeout:.0f} s; the screen ends with:\n"
                    f"{self.screen()}",
                    pytrace=False,
                )

    def stays_without(self, text: str, seconds: float = 1.0) -> None:
        """Keep reading for a while and check that `text` does not appear."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._read(0.1):
            pass
        if text in self.visible()[self.position :]:
            pytest.fail(f"unexpectedly saw {text!r}; the screen ends with:\n{self.screen()}")

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def answer(self, question: str, keys: str) -> None:
        """Wait for a question, then type the keys that answer it."""
        self.expect(question)
        self.send(keys)

    def finish(self) -> int:
        deadline = time.monotonic() + WAIT
        while self._read(0.2):
            if time.monotonic() > deadline:
                pytest.fail(f"copier did not finish; the screen ends with:\n{self.screen()}")
        self.child.close()
        return self.child.exitstatus


Spawn = Callable[..., tuple[Terminal, Path]]


@pytest.fixture
def spawn_copier(tmp_path: Path) -> Iterator[Spawn]:
    """Start `copier copy` of this template into tmp_path/project in a pseudo-terminal."""
    children: list[pexpect.spawn] = []

    def spawn(
        columns: int = COLUMNS, rows: int = ROWS, update: Path | None = None
    ) -> tuple[Terminal, Path]:
        settings = tmp_path / "copier-settings.yml"
        settings.write_text("{}\n")  # no personal defaults (an empty file is invalid for Copier)
        env = {
            **os.environ,
            "TERM": "xterm",
            "LANG": "C.UTF-8",
            "COLUMNS": str(columns),
            "LINES": str(rows),
            "COPIER_SETTINGS_PATH": str(settings),
            # pexpect does not answer prompt_toolkit's cursor-position requests
            "PROMPT_TOOLKIT_NO_CPR": "1",
        }
        dst = update or tmp_path / "project"
        args = ["copy", str(TEMPLATE_ROOT), str(dst)] if update is None else ["update"]
        child = pexpect.spawn(
            sys.executable,
            ["-m", "copier", *args, "--vcs-ref", "HEAD"],
            cwd=str(dst if update else tmp_path),
            env=env,
            dimensions=(rows, columns),
            encoding="utf-8",
            codec_errors="replace",
            timeout=WAIT,
        )
        children.append(child)
        return Terminal(child), dst

    yield spawn
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def framework_list(pointer_on: str, reasons: dict[str, str], recommended: str) -> str:
    """The framework select list as shown: a greyed-out choice is "- Label (reason)"."""
    rows = []
    for framework, label in FRAMEWORK_LABELS.items():
        title = label + (" (recommended)" if framework == recommended else "")
        if framework in reasons:
            rows.append(f"- {title} ({reasons[framework]})")
        else:
            rows.append(("» " if framework == pointer_on else "") + title)
    return " ".join(rows)


def not_available(available: list[str]) -> str:
    return "not available yet; available now: " + ", ".join(available)


@pytest.mark.timeout(180)
def test_a_person_answers_the_questions(spawn_copier: Spawn) -> None:
    term, dst = spawn_copier()
    available = available_frameworks()

    term.answer("Project name", CLEAR_LINE + "Café Menü" + ENTER)
    # The slug and package defaults follow the name, transliterated.
    term.expect("Project slug")
    term.expect("cafe-menu")
    term.send(ENTER)
    term.expect("Python package name")
    term.expect("cafe_menu")

    # A keyword is refused with its message, and the same question stays.
    term.send(CLEAR_LINE + "class" + ENTER)
    term.expect("Validation error for question 'package_name': is a keyword; try \"class_api\"")
    term.stays_without("One-line description")
    term.send(CLEAR_LINE + "menu_api" + ENTER)

    term.answer("One-line description", CLEAR_LINE + "Menus and orders" + ENTER)
    term.answer("Author name", "Ada Lovelace" + ENTER)
    term.expect("Author e-mail")
    term.send("ada" + ENTER)
    term.expect("Validation error for question 'author_email': not valid; try \"ada@example.com\"")
    term.stays_without("Lowest Python version to support")
    term.send("@example.com" + ENTER)
    term.answer("Lowest Python version to support", DOWN + ENTER)  # 3.12
    term.answer("How big will this codebase get?", ENTER)  # small
    term.answer("Async request handlers?", "y")
    term.answer("Use an ORM", ENTER)  # yes
    term.answer("An admin UI to browse and edit the data", "n")

    # The framework question names the recommendation and its reason, and
    # greys out what needs_async rules out, with the reason.
    term.expect(f"Web framework. Recommended for your answers: FastAPI ({ASYNC_REASON}).")
    term.expect("Greyed-out choices conflict with the earlier answer named next to them.")
    reasons = dict(ASYNC_DISABLED)
    if "flask" not in available:
        reasons["flask"] = not_available(available)
    term.expect(framework_list("fastapi", reasons, recommended="fastapi"))
    term.send(ENTER)

    term.answer("Database the app uses", DOWN + ENTER)  # PostgreSQL
    term.answer("Users and bearer tokens", "n")
    term.answer("Observability: /metrics", "n")
    term.answer("Background jobs?", "y")
    # Asked only with PostgreSQL: several instances share one database.
    term.answer("Kubernetes manifests", "y")
    term.expect("make dev")
    assert term.finish() == 0, term.screen()

    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    assert {key: value for key, value in answers.items() if not key.startswith("_")} == {
        "project_name": "Café Menü",
        "project_slug": "cafe-menu",
        "package_name": "menu_api",
        "description": "Menus and orders",
        "author_name": "Ada Lovelace",
        "author_email": "ada@example.com",
        "python_version": "3.12",
        "project_size": "small",
        "needs_async": True,
        "use_orm": True,
        "needs_admin": False,
        "framework": "fastapi",
        "database": "postgresql",
        "needs_auth": False,
        "observability": False,
        "background_jobs": True,
        "kubernetes": True,
    }


@pytest.mark.timeout(180)
def test_the_recommendation_follows_the_answers(spawn_copier: Spawn) -> None:
    """Small and synchronous: Flask is recommended; without the ORM, DRF is ruled out."""
    # 80 columns: the help is wrapped to fit, not cut off.
    term, dst = spawn_copier(columns=80, rows=24)
    available = available_frameworks()

    for question in ["Project name", "Project slug", "Python package name"]:
        term.answer(question, ENTER)
    for question in ["One-line description", "Author name", "Author e-mail"]:
        term.answer(question, ENTER)
    term.answer("Lowest Python version to support", ENTER)
    term.answer("How big will this codebase get?", ENTER)  # small
    term.answer("Async request handlers?", "n")
    term.answer("Use an ORM", "n")
    # needs_admin is asked only with the ORM.
    term.expect("Web framework")
    assert "An admin UI" not in term.visible()

    term.expect(f"Recommended for your answers: Flask ({SMALL_REASON}).")
    default = "flask" if "flask" in available else "fastapi"
    if default != "flask":
        term.expect(
            "Flask is not available yet in this version of the template, so the default is FastAPI."
        )
    term.expect("Greyed-out choices conflict with the earlier answer named next to them.")
    reasons = {"drf": "use_orm: Django's ORM is part of DRF"}
    reasons |= {
        fw: not_available(available) for fw in ["flask", "bottle", "pyramid"] if fw not in available
    }
    term.expect(framework_list(default, reasons, recommended="flask"))
    # The cursor starts on the default, so Enter picks it.
    term.send(ENTER)
    term.answer("Database the app uses", ENTER)
    term.answer("Users and bearer tokens", ENTER)  # a new project: on
    term.answer("Observability: /metrics", ENTER)  # a new project: on
    term.answer("Background jobs?", ENTER)  # no
    term.expect("make dev")
    # kubernetes is asked only with PostgreSQL.
    assert "Kubernetes manifests" not in term.visible()
    assert term.finish() == 0, term.screen()

    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    assert answers["needs_auth"] is True
    assert answers["observability"] is True
    assert answers["framework"] == default
    assert answers["use_orm"] is False
    assert "needs_admin" not in answers
    assert answers["background_jobs"] is False
    assert "kubernetes" not in answers


@pytest.mark.timeout(180)
def test_validation_messages_fit_an_80_column_terminal(spawn_copier: Spawn) -> None:
    """The error bar is one line, cut at the width: the fix must be inside 80 columns."""
    term, _ = spawn_copier(columns=80, rows=24)
    term.answer("Project name", ENTER)
    term.answer("Project slug", CLEAR_LINE + "Bad_Slug" + ENTER)
    term.expect("Validation error for question 'project_slug': not a valid slug; try \"bad-slug\"")
    term.send(CLEAR_LINE + "bad-slug" + ENTER)
    term.answer("Python package name", CLEAR_LINE + "pydantic_settings" + ENTER)
    # Exactly 80 columns: the terminal gets the last column on its own (after
    # `\r` and a cursor move), so the closing quote is matched separately.
    term.expect("Validation error for question 'package_name': taken; try \"pydantic_settings_api")
    term.expect('"')
    term.child.terminate(force=True)


def git(cwd: Path, *args: str) -> None:
    identity = ["-c", "user.name=Prompt Test", "-c", "user.email=prompt@example.com"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.timeout(240)
def test_update_recommends_no_framework_it_has_disabled(
    spawn_copier: Spawn, tmp_path: Path
) -> None:
    """A small synchronous FastAPI project: Flask is the recommendation for its answers,
    but an update cannot switch the framework, so the help says so and no choice is
    marked "(recommended)"."""
    # A committed snapshot of the working tree: an update re-renders the recorded
    # commit, which a dirty template's temporary commit would not be.
    template = tmp_path / "template"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for rel in filter(None, files):
        if (TEMPLATE_ROOT / rel).is_file():
            (template / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_ROOT / rel, template / rel)
    git(template, "init", "-q")
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", "snapshot")
    project = tmp_path / "existing"
    command = [sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD"]
    command += ["--data", "framework=fastapi", str(template), str(project)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "Initial commit")

    term, _ = spawn_copier(columns=80, rows=24, update=project)
    for question in ["Project name", "Project slug", "Python package name"]:
        term.answer(question, ENTER)
    for question in ["One-line description", "Author name", "Author e-mail"]:
        term.answer(question, ENTER)
    term.answer("Lowest Python version to support", ENTER)
    term.answer("How big will this codebase get?", ENTER)  # small: Flask recommended
    term.answer("Async request handlers?", ENTER)
    term.answer("Use an ORM", ENTER)
    term.answer("An admin UI to browse and edit the data", ENTER)
    term.expect(
        "Web framework. This is a FastAPI project, and an update keeps it (a switch "
        "would delete your work)."
    )
    term.expect("» FastAPI - Django REST Framework (this is a fastapi project and an update")
    term.send(ENTER)
    term.answer("Database the app uses", ENTER)
    term.answer("Users and bearer tokens", ENTER)
    term.answer("Observability: /metrics", ENTER)
    term.answer("Background jobs?", ENTER)
    assert term.finish() == 0, term.screen()
    assert "Recommended" not in term.visible()
    assert "(recommended)" not in term.visible()
