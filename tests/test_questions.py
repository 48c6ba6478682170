"""The questionnaire (copier.yml): defaults, validators, the recommendation, disabled choices.

Most tests only need Copier to *ask*: they run the real copier.yml against a copy
of the questionnaire (copier.yml and hooks/, no git, empty
framework folders, every file excluded), which takes a fraction of a full
render and does not depend on the framework templates being written alongside.
A few tests render the real template from git to show what a user gets.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import copier
import jinja2
import pytest
import yaml
from harness import TEMPLATE_ROOT
from matrix import FRAMEWORKS, LABELS, TABLE

# Rendering the working tree (vcs_ref HEAD) of a template under development is the point here.
pytestmark = pytest.mark.filterwarnings("ignore::copier.errors.DirtyLocalWarning")

ALL_FRAMEWORKS = list(FRAMEWORKS)  # hooks/frameworks.jinja, the one list

# docs/QUESTIONS.md section 2, "Answer keys, in the order asked".
ANSWER_KEYS = [
    "project_name",
    "project_slug",
    "package_name",
    "description",
    "author_name",
    "author_email",
    "python_version",
    "project_size",
    "needs_async",
    "use_orm",
    "needs_admin",
    "framework",
    "database",
    "needs_auth",
    "observability",
    "background_jobs",
    "kubernetes",
]
COMPUTED_KEYS = ["available_frameworks", "recommended_framework", "recommendation_reason"]

# docs/QUESTIONS.md section 3, "The recommendation": the reason of each row, word for word.
REASONS = {
    1: "async-first (ASGI), built for many concurrent I/O-bound requests; "
    "docs and validation from type hints",
    2: "Django ships an admin UI, ORM, migrations and auth out of the box",
    3: "the most built-in structure for a large, long-lived codebase with many developers",
    4: "explicit, flexible configuration that scales from small to large without imposing an ORM",
    5: "one small dependency, a whole app in a few files: the fastest start",
    6: "lightweight, huge ecosystem of extensions, minimal boilerplate",
}

# docs/QUESTIONS.md section 2, the table of disabled choices: each framework its own reason.
ASYNC_MESSAGE = {
    "drf": "needs_async: DRF views are synchronous",
    "bottle": "needs_async: Bottle is WSGI-only",
    "pyramid": "needs_async: Pyramid is WSGI-only",
}
ADMIN_MESSAGE = {
    "bottle": "needs_admin: no maintained admin UI for Bottle",
    "pyramid": "needs_admin: no maintained admin UI for Pyramid",
}
ORM_MESSAGE = "use_orm: Django's ORM is part of DRF"


@pytest.fixture(scope="session")
def questionnaire(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """copier.yml and the macros it imports, copied once into a plain folder."""
    root = tmp_path_factory.mktemp("questionnaire")
    shutil.copy2(TEMPLATE_ROOT / "copier.yml", root / "copier.yml")
    shutil.copytree(TEMPLATE_ROOT / "hooks", root / "hooks")
    for framework in ALL_FRAMEWORKS:  # `_subdirectory` must exist, even with nothing in it
        (root / "templates" / framework).mkdir(parents=True)
    return root


def ask(questionnaire: Path, tmp_path: Path, **data: Any) -> dict[str, Any]:
    """Answer the questionnaire non-interactively; return every answer, computed ones included."""
    worker = copier.run_copy(
        str(questionnaire),
        str(tmp_path / "dst"),
        data=data,
        defaults=True,
        pretend=True,
        exclude=["*"],
        quiet=True,
    )
    assert not (tmp_path / "dst").exists()
    return {key: worker.answers.combined[key] for key in ANSWER_KEYS + COMPUTED_KEYS}


def refused(template: Path, dst: Path, **data: Any) -> str:
    """Run a copy that must be refused; return the error text, after checking nothing was written."""
    vcs_ref = "HEAD" if (template / ".git").exists() else None
    with pytest.raises(ValueError) as excinfo:
        copier.run_copy(
            str(template), str(dst), data=data, defaults=True, vcs_ref=vcs_ref, quiet=True
        )
    assert not dst.exists() or not any(dst.iterdir()), "a refused copy wrote files"
    return str(excinfo.value)


# ---- copier.yml itself ------------------------------------------------------------------


def test_questions_are_the_answer_keys_in_order_each_typed_helped_and_defaulted() -> None:
    config = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    questions = {key: value for key, value in config.items() if not key.startswith("_")}
    asked = [key for key, value in questions.items() if value.get("when") is not False]
    assert asked == ANSWER_KEYS
    computed = [key for key, value in questions.items() if value.get("when") is False]
    assert computed == COMPUTED_KEYS
    assert list(questions).index("recommendation_reason") < list(questions).index("framework")
    for key, question in questions.items():
        assert question.get("type"), key
        assert "default" in question, key
        if key in ANSWER_KEYS:
            assert question.get("help"), key
    # Free input (str without choices) is always validated.
    for key in ANSWER_KEYS:
        if questions[key]["type"] == "str" and "choices" not in questions[key]:
            assert questions[key].get("validator"), key


def test_help_and_choice_labels_fit_an_80_column_terminal() -> None:
    """questionary cuts (does not wrap) long lines: "🎤 " takes 3 columns, choices 5."""
    config = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    for key in ANSWER_KEYS:
        question = config[key]
        if "{" not in question["help"]:  # the framework help wraps itself (test_prompt.py)
            assert len(question["help"]) <= 77, key
        choices = question.get("choices", [])
        if isinstance(choices, str):  # `framework`: labels from hooks/frameworks.jinja
            labels = [label + " (recommended)" for label in LABELS.values()]
        else:
            labels = choices if isinstance(choices, list) else list(choices)
        for label in labels:
            assert len(label) <= 75, (key, label)


def test_no_tasks_and_no_jinja_extensions_so_copy_needs_no_trust(tmp_path: Path) -> None:
    config = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    assert "_tasks" not in config
    assert "_jinja_extensions" not in config
    assert config["_min_copier_version"] == "9.18"
    assert config["_subdirectory"] == "templates/{{ framework }}"
    assert config["_answers_file"] == ".copier-answers.yml"
    for pattern in ["__pycache__", "*.pyc", ".DS_Store", ".mypy_cache", ".ruff_cache"]:
        assert pattern in config["_exclude"]
    # And a copy without unsafe=True (no --trust) goes through.
    dst = tmp_path / "project"
    copier.run_copy(str(TEMPLATE_ROOT), str(dst), defaults=True, vcs_ref="HEAD", quiet=True)
    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    assert {key: answers[key] for key in ANSWER_KEYS if key in answers} == {
        "project_name": "My API",
        "project_slug": "my-api",
        "package_name": "my_api",
        "description": "My API: a REST API",
        "author_name": "",
        "author_email": "",
        "python_version": "3.11",
        "project_size": "small",
        "needs_async": False,
        "use_orm": True,
        "needs_admin": False,
        # The recommendation for the defaults (project_size: small), docs/QUESTIONS.md row 6.
        "framework": "flask",
        "database": "sqlite",
        # A new project gets the options of docs/QUESTIONS.md "Part two" at their defaults.
        "needs_auth": True,
        "observability": True,
        "background_jobs": False,
    }
    # kubernetes is asked only with PostgreSQL: not recorded for SQLite.
    assert "kubernetes" not in answers
    # Computed values are not saved: they are recomputed on every update.
    assert not set(COMPUTED_KEYS) & set(answers)
    # hooks/ and docs/ are the template's own, outside `_subdirectory`: never rendered.
    assert not (dst / "hooks").exists()
    assert not (dst / "docs").exists()


def test_message_after_copy_lists_the_next_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dst = tmp_path / "my project"
    copier.run_copy(
        str(TEMPLATE_ROOT),
        str(dst),
        data={"use_orm": True, "needs_admin": True, "database": "postgresql"},
        defaults=True,
        vcs_ref="HEAD",
    )
    captured = capsys.readouterr()
    message = captured.out + captured.err
    commands = [
        f"cd '{dst}'",
        'git init && git add -A && git commit -m "Initial commit"',
        "make install",
        'git add uv.lock && git commit -m "Lock dependencies"',
        "cp .env.example .env && docker compose up -d db",
        "make migrate",
        "make createadmin",
        "make test",
        "make dev",
    ]
    positions = [message.index(command) for command in commands]
    assert positions == sorted(positions), message
    assert "http://127.0.0.1:8000/docs" in message
    assert "copier update" in message  # why the commit matters


@pytest.mark.parametrize(
    ("data", "first_account"),
    [
        ({}, "make createuser"),
        ({"needs_admin": True}, "make createadmin"),
        ({"needs_auth": False}, None),
    ],
    ids=["auth", "auth-admin", "open"],
)
def test_message_after_copy_creates_the_first_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any], first_account: str
) -> None:
    """With users, the first one comes before `make test` and `make dev` (an admin, with the
    admin UI: it signs in to both); an open project creates none."""
    copier.run_copy(
        str(TEMPLATE_ROOT),
        str(tmp_path / "project"),
        data={"framework": "fastapi", **data},
        defaults=True,
        vcs_ref="HEAD",
    )
    captured = capsys.readouterr()
    message = captured.out + captured.err
    accounts = [c for c in ("make createuser", "make createadmin") if c in message]
    if first_account is None:
        assert accounts == [], message
        return
    assert accounts == [first_account], message
    assert message.index("make migrate") < message.index(first_account), message
    assert message.index(first_account) < message.index("make dev"), message


RELATIVE_WARNING = (
    "Warning: the template was copied from the relative path {src}, and\n"
    ".copier-answers.yml records it as given, so a later `copier update` fails with\n"
    '"Local template must be a directory." The copier copy command above, run\n'
    "before the first commit, records the absolute path instead (same answers)."
)


def copier_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=True)


def test_copy_from_a_relative_path_warns_and_gives_the_absolute_command(tmp_path: Path) -> None:
    relative = os.path.relpath(TEMPLATE_ROOT, tmp_path)
    result = copier_cli("--data", "framework=bottle", relative, "project", cwd=tmp_path)
    answers = yaml.safe_load((tmp_path / "project" / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == relative  # what breaks `copier update` later
    command = f"copier copy --defaults --overwrite --vcs-ref HEAD {TEMPLATE_ROOT} ."
    assert f"  cd project\n  {command}   # see below\n  git init" in result.stderr
    assert result.stderr.rstrip().endswith(RELATIVE_WARNING.format(src=relative))
    # The command, run in the project, records the absolute path and keeps the answers.
    subprocess.run(
        [sys.executable, "-m", *command.split()],
        cwd=tmp_path / "project",
        capture_output=True,
        timeout=120,
        check=True,
    )
    again = yaml.safe_load((tmp_path / "project" / ".copier-answers.yml").read_text())
    assert again.pop("_src_path") == str(TEMPLATE_ROOT)
    assert {k: v for k, v in again.items() if k != "_commit"} == {
        k: v for k, v in answers.items() if k not in ("_commit", "_src_path")
    }


def test_copy_from_an_absolute_path_does_not_warn(tmp_path: Path) -> None:
    result = copier_cli(str(TEMPLATE_ROOT), "project", cwd=tmp_path)
    assert "make dev" in result.stderr
    assert "relative path" not in result.stderr
    assert "--overwrite" not in result.stderr


# ---- defaults derived from earlier answers -----------------------------------------------


def test_defaults_of_a_full_render(copie: Any) -> None:
    result = copie.copy(
        extra_answers={"project_name": "Café Menü", "author_name": "Zoë"},
        template_dir=TEMPLATE_ROOT,
    )
    assert result.exception is None, result.exception
    assert result.answers["project_slug"] == "cafe-menu"
    assert result.answers["package_name"] == "cafe_menu"
    saved = yaml.safe_load((result.project_dir / ".copier-answers.yml").read_text())
    assert (saved["project_name"], saved["author_name"]) == ("Café Menü", "Zoë")


@pytest.mark.parametrize(
    ("project_name", "slug", "package"),
    [
        ("My API", "my-api", "my_api"),
        ("Café Menü", "cafe-menu", "cafe_menu"),
        ("Straße nach Ærø", "strasse-nach-aero", "strasse_nach_aero"),
        (
            "Łódź Þing Œuvre Ðað Đuro Øl",
            "lodz-thing-oeuvre-dad-duro-ol",
            "lodz_thing_oeuvre_dad_duro_ol",
        ),
        ("İstanbul Ĳssel", "istanbul-ijssel", "istanbul_ijssel"),
        ("Cafe\u0301 decomposed", "cafe-decomposed", "cafe_decomposed"),
        ("  --Hello__World!!--  ", "hello-world", "hello_world"),
        ("Bob’s C++ & Jo's API", "bobs-c-jos-api", "bobs_c_jos_api"),
        ("2024 Report", "api-2024-report", "api_2024_report"),
        ("!!!", "my-api", "my_api"),
        ("日本語", "my-api", "my_api"),
        # A slug that makes an unusable package name gets a usable default.
        ("Flask", "flask", "flask_api"),
        ("Test", "test", "test_api"),
        ("Class", "class", "class_api"),
        ("Email", "email", "email_api"),
    ],
)
def test_slug_and_package_defaults(
    questionnaire: Path, tmp_path: Path, project_name: str, slug: str, package: str
) -> None:
    answers = ask(questionnaire, tmp_path, project_name=project_name)
    assert (answers["project_slug"], answers["package_name"]) == (slug, package)


def test_package_default_follows_a_given_slug(questionnaire: Path, tmp_path: Path) -> None:
    answers = ask(questionnaire, tmp_path, project_name="Café", project_slug="order-desk")
    assert answers["package_name"] == "order_desk"


def _expected_ascii(letter: str) -> str:
    """The ASCII letters a Latin letter stands for: its base letter, or the usual spelling."""
    special = {"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "ð": "d",
               "þ": "th", "ħ": "h", "ı": "i", "ĳ": "ij", "ĸ": "k", "ŀ": "l", "ŉ": "n",
               "ŋ": "ng", "ŧ": "t", "ſ": "s", "µ": "u", "ª": "a", "º": "o"}  # fmt: skip
    lower = "i" if letter == "İ" else letter.lower()
    if lower in special:
        return special[lower]
    base = "".join(c for c in unicodedata.normalize("NFKD", lower) if c.isascii())
    assert base.isalpha(), letter
    return base


LATIN_LETTERS = [
    chr(code)
    for code in range(0x00A0, 0x0180)  # Latin-1 Supplement and Latin Extended-A
    if unicodedata.category(chr(code)).startswith("L")
]


@pytest.mark.parametrize("chunk", range(0, len(LATIN_LETTERS), 25))
def test_every_latin1_and_extended_a_letter_is_transliterated(
    questionnaire: Path, tmp_path: Path, chunk: int
) -> None:
    letters = LATIN_LETTERS[chunk : chunk + 25]
    answers = ask(questionnaire, tmp_path, project_name=" ".join("x" + c for c in letters))
    assert answers["project_slug"] == "-".join("x" + _expected_ascii(c) for c in letters)


# ---- the recommendation ------------------------------------------------------------------

RECOMMENDATIONS = [
    # row 1 wins over everything after it
    pytest.param({"needs_async": True}, "fastapi", 1, id="1-async"),
    pytest.param({"needs_async": True, "needs_admin": True}, "fastapi", 1, id="1-async+admin"),
    pytest.param({"needs_async": True, "project_size": "large"}, "fastapi", 1, id="1-async+large"),
    pytest.param(
        {"needs_async": True, "project_size": "large", "use_orm": False},
        "fastapi",
        1,
        id="1-async+large+no-orm",
    ),
    pytest.param(
        {"needs_async": True, "project_size": "prototype"}, "fastapi", 1, id="1-async+prototype"
    ),
    # row 2 wins over the size rows
    pytest.param({"needs_admin": True}, "drf", 2, id="2-admin"),
    pytest.param({"needs_admin": True, "project_size": "large"}, "drf", 2, id="2-admin+large"),
    pytest.param(
        {"needs_admin": True, "project_size": "prototype"}, "drf", 2, id="2-admin+prototype"
    ),
    pytest.param({"project_size": "large"}, "drf", 3, id="3-large+orm"),
    pytest.param({"project_size": "large", "use_orm": False}, "pyramid", 4, id="4-large+no-orm"),
    pytest.param({"project_size": "prototype"}, "bottle", 5, id="5-prototype"),
    pytest.param(
        {"project_size": "prototype", "use_orm": False}, "bottle", 5, id="5-prototype+no-orm"
    ),
    pytest.param({"project_size": "small"}, "flask", 6, id="6-small"),
    pytest.param({"project_size": "medium"}, "flask", 6, id="6-medium"),
    pytest.param({"project_size": "medium", "use_orm": False}, "flask", 6, id="6-medium+no-orm"),
]


@pytest.mark.parametrize(("answers", "framework", "row"), RECOMMENDATIONS)
def test_recommendation_table(
    questionnaire: Path, tmp_path: Path, answers: dict[str, Any], framework: str, row: int
) -> None:
    # The recommended framework is the default once it is available...
    result = ask(questionnaire, tmp_path / "all", available_frameworks=ALL_FRAMEWORKS, **answers)
    assert result["recommended_framework"] == framework
    assert result["recommendation_reason"] == REASONS[row]
    assert result["framework"] == framework
    # ...and the recommendation does not depend on what is available; FastAPI
    # is the default while the recommended framework is not.
    result = ask(questionnaire, tmp_path / "fastapi", available_frameworks=["fastapi"], **answers)
    assert (result["recommended_framework"], result["recommendation_reason"]) == (
        framework,
        REASONS[row],
    )
    assert result["framework"] == "fastapi"


README_LINE = re.compile(
    r"^Recommended framework: (?P<framework>[\w ]+?) \((?P<reason>.+)\)"
    r"(?:; (?P<chosen>[\w ]+?) was chosen instead)?\.$",
    re.MULTILINE,
)


@pytest.mark.parametrize(
    ("answers", "framework", "row"),
    [RECOMMENDATIONS[i] for i in (1, 7, 8, 9, 10, 14)],  # one of each row, with precedence
)
def test_generated_readme_states_the_recommendation(
    copie: Any, answers: dict[str, Any], framework: str, row: int
) -> None:
    # FastAPI forced: whatever is recommended, the project renders with what is available.
    result = copie.copy(
        extra_answers={**answers, "framework": "fastapi"}, template_dir=TEMPLATE_ROOT
    )
    assert result.exception is None, result.exception
    match = README_LINE.search((result.project_dir / "README.md").read_text())
    assert match, "no 'Recommended framework: ...' line in README.md"
    assert (match["framework"], match["reason"]) == (LABELS[framework], REASONS[row])
    assert match["chosen"] == (None if framework == "fastapi" else LABELS["fastapi"])


def test_one_list_of_frameworks_in_hooks() -> None:
    """copier.yml names no framework itself: the choices, their labels and the
    available ones come from hooks/frameworks.jinja (tests/matrix.py reads it too)."""
    text = (TEMPLATE_ROOT / "copier.yml").read_text()
    config = yaml.safe_load(text)
    assert "hooks/frameworks.jinja" in config["framework"]["choices"]
    assert "hooks/frameworks.jinja" in config["available_frameworks"]["default"]
    assert FRAMEWORKS == ("fastapi", "drf", "flask", "bottle", "pyramid")  # the answer values
    assert [row["label"] for row in TABLE] == [
        "FastAPI", "Django REST Framework", "Flask", "Bottle", "Pyramid"
    ]  # fmt: skip
    for name in ["Django REST Framework", "WSGI-only", "available_frameworks: ["]:
        assert name not in text, name


def test_the_choices_copier_offers_are_the_list(questionnaire: Path, tmp_path: Path) -> None:
    error = refused(questionnaire, tmp_path / "dst", framework="django")
    assert error == f"Invalid choice for 'framework': 'django' is not in {list(FRAMEWORKS)}"
    available = ask(questionnaire, tmp_path)["available_frameworks"]
    assert available == [row["value"] for row in TABLE if row["available"]]


def test_the_user_may_pick_any_enabled_framework(questionnaire: Path, tmp_path: Path) -> None:
    # Flask stays enabled with needs_async (docs/QUESTIONS.md); the recommendation stays FastAPI.
    result = ask(
        questionnaire,
        tmp_path,
        available_frameworks=ALL_FRAMEWORKS,
        needs_async=True,
        framework="flask",
    )
    assert (result["framework"], result["recommended_framework"]) == ("flask", "fastapi")


# ---- disabled framework choices ------------------------------------------------------------

DISABLED = [
    pytest.param({"needs_async": True}, "drf", ASYNC_MESSAGE["drf"], id="async-drf"),
    pytest.param({"needs_async": True}, "bottle", ASYNC_MESSAGE["bottle"], id="async-bottle"),
    pytest.param({"needs_async": True}, "pyramid", ASYNC_MESSAGE["pyramid"], id="async-pyramid"),
    pytest.param({"needs_admin": True}, "bottle", ADMIN_MESSAGE["bottle"], id="admin-bottle"),
    pytest.param({"needs_admin": True}, "pyramid", ADMIN_MESSAGE["pyramid"], id="admin-pyramid"),
    pytest.param({"use_orm": False}, "drf", ORM_MESSAGE, id="no-orm-drf"),
    # first rule wins when several apply
    pytest.param(
        {"needs_async": True, "use_orm": False}, "drf", ASYNC_MESSAGE["drf"], id="async+no-orm-drf"
    ),
    pytest.param(
        {"needs_async": True, "needs_admin": True},
        "bottle",
        ASYNC_MESSAGE["bottle"],
        id="async+admin-bottle",
    ),
]


@pytest.mark.parametrize(("answers", "framework", "message"), DISABLED)
def test_disabled_choice_fails_with_its_reason(
    questionnaire: Path, tmp_path: Path, answers: dict[str, Any], framework: str, message: str
) -> None:
    error = refused(
        questionnaire,
        tmp_path / "dst",
        available_frameworks=ALL_FRAMEWORKS,
        framework=framework,
        **answers,
    )
    assert error == f"Invalid choice for 'framework': {message}"


@pytest.mark.parametrize(
    ("answers", "framework"),
    [
        ({"needs_async": True}, "fastapi"),
        ({"needs_async": True}, "flask"),
        ({"needs_admin": True}, "fastapi"),
        ({"needs_admin": True}, "drf"),
        ({"needs_admin": True}, "flask"),
        ({"use_orm": False}, "fastapi"),
        ({"use_orm": False}, "flask"),
        ({"use_orm": False}, "bottle"),
        ({"use_orm": False}, "pyramid"),
    ],
)
def test_compatible_choices_stay_enabled(
    questionnaire: Path, tmp_path: Path, answers: dict[str, Any], framework: str
) -> None:
    result = ask(
        questionnaire, tmp_path, available_frameworks=ALL_FRAMEWORKS, framework=framework, **answers
    )
    assert result["framework"] == framework


@pytest.mark.parametrize("framework", ["drf", "flask", "bottle", "pyramid"])
def test_framework_not_available_yet(questionnaire: Path, tmp_path: Path, framework: str) -> None:
    error = refused(
        questionnaire, tmp_path / "dst", available_frameworks=["fastapi"], framework=framework
    )
    assert error == "Invalid choice for 'framework': not available yet; available now: fastapi"


def test_not_available_yet_lists_what_is(questionnaire: Path, tmp_path: Path) -> None:
    error = refused(
        questionnaire,
        tmp_path / "dst",
        available_frameworks=["fastapi", "flask"],
        framework="pyramid",
    )
    assert error == (
        "Invalid choice for 'framework': not available yet; available now: fastapi, flask"
    )
    # A ruled-out choice gives its own reason, whether or not it is available.
    error = refused(
        questionnaire,
        tmp_path / "dst",
        available_frameworks=["fastapi"],
        needs_async=True,
        framework="pyramid",
    )
    assert error == f"Invalid choice for 'framework': {ASYNC_MESSAGE['pyramid']}"


def test_refused_framework_writes_nothing_from_the_real_template(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    error = refused(TEMPLATE_ROOT, dst, needs_async=True, framework="bottle")
    assert error == f"Invalid choice for 'framework': {ASYNC_MESSAGE['bottle']}"
    assert not dst.exists()


@pytest.mark.parametrize(
    ("preset", "last_line"),
    [
        (
            "needs_async: true\nframework: bottle\n",
            f"ValueError: Invalid choice for 'framework': {ASYNC_MESSAGE['bottle']}",
        ),
        (
            "project_name: Class\n",  # the default package name is fine: class_api
            None,
        ),
        (
            "package_name: class\n",
            (
                "ValueError: Validation error for question 'package_name': "
                'is a keyword; try "class_api"'
            ),
        ),
    ],
)
def test_preset_file_on_the_command_line(
    tmp_path: Path, preset: str, last_line: str | None
) -> None:
    """`copier copy --data-file`: a bad answer ends the traceback with its message, writes nothing."""
    (tmp_path / "preset.yml").write_text(preset)
    dst = tmp_path / "project"
    command = [sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD"]
    command += ["--data-file", str(tmp_path / "preset.yml"), str(TEMPLATE_ROOT), str(dst)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if last_line is None:
        assert result.returncode == 0, result.stderr
        answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
        assert (answers["project_slug"], answers["package_name"]) == ("class", "class_api")
    else:
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == last_line
        assert not dst.exists()


# ---- validators --------------------------------------------------------------------------

# Copier prefixes each with "Validation error for question '<key>': ", and the
# interactive prompt shows that on one line, cut at the terminal's width.
ONE_LINE = "use one line, no tabs or controls"


def bad_slug(value: str, suggestion: str) -> tuple[str, str, str]:
    return ("project_slug", value, f'not a valid slug; try "{suggestion}"')


def bad_package(value: str, suggestion: str) -> tuple[str, str, str]:
    return ("package_name", value, f'not a valid name; try "{suggestion}"')


def upper_case_package(value: str, suggestion: str) -> tuple[str, str, str]:
    return ("package_name", value, f'use lower case; try "{suggestion}"')


def taken_package(value: str, why: str) -> tuple[str, str, str]:
    return ("package_name", value, f'{why}; try "{value}_api"')


def bad_email(value: str) -> tuple[str, str, str]:
    return ("author_email", value, 'not valid; try "ada@example.com"')


USED = "taken"

INVALID = [
    ("project_name", "", 'must not be empty; try "My API"'),
    ("project_name", "   ", 'must not be empty; try "My API"'),
    ("project_name", "x" * 81, "is 81 characters; use at most 80"),
    ("project_name", "My\nAPI", ONE_LINE),
    ("project_name", "My\x00API", ONE_LINE),
    ("project_slug", "", 'must not be empty; try "my-api"'),
    bad_slug("Café Menü", "cafe-menu"),
    bad_slug("Bad_Slug", "bad-slug"),
    bad_slug("my--api", "my-api"),
    bad_slug("my_api", "my-api"),
    bad_slug("2fast", "api-2fast"),
    bad_slug("api-", "api"),
    ("package_name", "", 'must not be empty; try "my_api"'),
    bad_package("my-api", "my_api"),
    bad_package("2fast", "api_2fast"),
    bad_package("_private", "private"),
    bad_package("café", "cafe"),
    upper_case_package("MyApi", "myapi"),
    upper_case_package("Class", "class_api"),
    taken_package("class", "is a keyword"),
    taken_package("async", "is a keyword"),
    taken_package("email", "in the stdlib"),
    taken_package("tomllib", "in the stdlib"),
    taken_package("asynchat", "in the stdlib"),  # gone in 3.12, still in 3.11
    *[
        taken_package(name, USED)
        for name in [
            "fastapi", "django", "flask", "bottle", "pyramid", "rest_framework", "sqlalchemy",
            "alembic", "pydantic", "pydantic_settings", "starlette", "uvicorn", "gunicorn",
            "werkzeug", "jinja2", "psycopg", "asyncpg", "aiosqlite", "sqladmin", "waitress",
            "webtest", "pytest", "test", "tests", "migrations", "manage",
        ]
    ],
    ("description", "line one\nline two", ONE_LINE),
    ("author_name", "Ada\tLovelace", ONE_LINE),
    *[
        bad_email(email)
        for email in [
            "ada", "ada@", "@example.com", "ada@example", "ada@@example.com",
            "ada lovelace@example.com", 'ada"@example.com', "ada@example.c",
            "ada@-example.com", "ada@example..com", "a" * 250 + "@example.com",
        ]
    ],
]  # fmt: skip


@pytest.mark.parametrize(
    ("question", "message"),
    sorted({(question, message) for question, _, message in INVALID}),
)
def test_each_validation_message_fits_80_columns_with_its_fix(question: str, message: str) -> None:
    """The prompt's error bar is one line, cut at the terminal's width (test_prompt.py)."""
    line = f"Validation error for question '{question}': {message}"
    assert len(line) <= 80, line
    assert "try " in message or message.startswith(("use ", "is ")), message


@pytest.mark.parametrize(
    ("question", "value", "message"),
    INVALID,
    ids=[f"{question}={value[:20]!r}" for question, value, _ in INVALID],
)
def test_validator_refuses_with_its_message(
    questionnaire: Path, tmp_path: Path, question: str, value: str, message: str
) -> None:
    error = refused(questionnaire, tmp_path / "dst", **{question: value})
    assert error == f"Validation error for question '{question}': {message}"


def test_needs_admin_without_orm_is_refused(questionnaire: Path, tmp_path: Path) -> None:
    error = refused(questionnaire, tmp_path / "dst", use_orm=False, needs_admin=True)
    assert error == "Validation error for question 'needs_admin': the admin UI needs use_orm=true"
    assert len(error) <= 80


def test_needs_admin_is_not_asked_without_orm(tmp_path: Path) -> None:
    dst = tmp_path / "project"
    copier.run_copy(
        str(TEMPLATE_ROOT),
        str(dst),
        data={"use_orm": False},
        defaults=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    assert answers["use_orm"] is False
    assert "needs_admin" not in answers


def test_kubernetes_without_postgresql_is_refused(questionnaire: Path, tmp_path: Path) -> None:
    error = refused(questionnaire, tmp_path / "dst", database="sqlite", kubernetes=True)
    assert (
        error == "Validation error for question 'kubernetes': Kubernetes needs database=postgresql"
    )
    assert len(error) <= 80


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"database": "postgresql"}, False),
        ({"database": "postgresql", "kubernetes": True}, True),
    ],
)
def test_kubernetes_is_asked_with_postgresql_and_off_by_default(
    questionnaire: Path, tmp_path: Path, data: dict[str, Any], expected: bool
) -> None:
    assert ask(questionnaire, tmp_path, **data)["kubernetes"] is expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [({}, True), ({"needs_auth": False}, False), ({"needs_auth": True}, True)],
)
def test_needs_auth_is_on_for_a_new_project(
    questionnaire: Path, tmp_path: Path, data: dict[str, Any], expected: bool
) -> None:
    assert ask(questionnaire, tmp_path, **data)["needs_auth"] is expected


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"needs_admin": True},
        {"needs_async": True},
        {"project_size": "large", "use_orm": False},
        {"project_size": "prototype"},
    ],
    ids=["defaults", "admin", "async", "large-sql", "prototype"],
)
def test_needs_auth_changes_no_recommendation_and_rules_out_no_framework(
    questionnaire: Path, tmp_path: Path, data: dict[str, Any]
) -> None:
    with_auth = ask(questionnaire, tmp_path / "on", needs_auth=True, **data)
    without = ask(questionnaire, tmp_path / "off", needs_auth=False, **data)
    for key in ("recommended_framework", "recommendation_reason", "framework"):
        assert with_auth[key] == without[key], key


def recopy_answers(questionnaire: Path, dst: Path, recorded: dict[str, Any]) -> dict[str, Any]:
    """The answers of `copier recopy --defaults` (an update re-renders the same way) over a
    project whose .copier-answers.yml holds `recorded`."""
    dst.mkdir(parents=True)
    (dst / ".copier-answers.yml").write_text(yaml.safe_dump(recorded))
    worker = copier.run_copy(
        str(questionnaire),
        str(dst),
        data={k: v for k, v in recorded.items() if not k.startswith("_")},
        defaults=True,
        overwrite=True,
        pretend=True,
        exclude=["*"],
        quiet=True,
    )
    return {key: worker.answers.combined[key] for key in ANSWER_KEYS}


def test_needs_auth_stays_off_for_a_project_from_before_the_question(
    questionnaire: Path, tmp_path: Path
) -> None:
    """hooks/update.jinja: a project that recorded answers (with `_commit`) but not
    `needs_auth` defaults to false, so `copier update --defaults` does not lock out its
    API clients; one that recorded `needs_auth` keeps its answer."""
    before = {"_commit": "v0.9.0", "_src_path": str(questionnaire), "framework": "flask"}
    assert recopy_answers(questionnaire, tmp_path / "old", before)["needs_auth"] is False
    recorded = {**before, "needs_auth": True}
    assert recopy_answers(questionnaire, tmp_path / "new", recorded)["needs_auth"] is True


def test_kubernetes_is_not_asked_with_sqlite(tmp_path: Path) -> None:
    dst = tmp_path / "project"
    copier.run_copy(
        str(TEMPLATE_ROOT),
        str(dst),
        data={"database": "sqlite"},
        defaults=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    assert "kubernetes" not in answers
    assert not (dst / "deploy" / "kubernetes").exists()


def test_validation_failure_writes_nothing_from_the_real_template(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()  # an existing, empty destination stays empty
    error = refused(TEMPLATE_ROOT, dst, package_name="class")
    assert error == "Validation error for question 'package_name': is a keyword; try \"class_api\""
    assert list(dst.iterdir()) == []


@pytest.mark.parametrize(
    ("question", "value"),
    [
        ("project_name", "x" * 80),
        ("project_name", 'Café "Menü" & Co. — 100% <API>'),
        ("project_slug", "a"),
        ("project_slug", "orders2-api-v3"),
        ("package_name", "a"),
        ("package_name", "orders_api2"),
        ("package_name", "match"),  # a soft keyword is a legal module name
        ("package_name", "items"),
        ("author_email", ""),
        ("author_email", "ada@example.com"),
        ("author_email", "ada.lovelace+api@mail.example.co.uk"),
        ("author_email", "o'brien@example.ie"),
        ("author_email", "jürgen@bücher.de"),
        ("description", "An API; with punctuation: «quotes», \"double\" and 'single'."),
        ("author_name", "Zoë O'Brien-Łukasiewicz"),
    ],
)
def test_validator_accepts(questionnaire: Path, tmp_path: Path, question: str, value: str) -> None:
    assert ask(questionnaire, tmp_path, **{question: value})[question] == value


# ---- the name lists the package_name validator uses ---------------------------------------


def _names(name: str) -> list[str]:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_ROOT))
    source = f'{{% from "hooks/names.jinja" import {name} %}}{{{{ {name} | tojson }}}}'
    return json.loads(env.from_string(source).render())


def test_stdlib_list_covers_this_python() -> None:
    # Run on 3.11, 3.12 or 3.13, this checks the embedded list against that version.
    public = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    assert public <= set(_names("stdlib_modules"))


def test_keyword_list_is_pythons() -> None:
    assert sorted(_names("python_keywords")) == sorted(keyword.kwlist)


def test_reserved_lists_are_valid_lower_case_names() -> None:
    names = _names("dependency_modules") + _names("project_modules")
    assert names == [n for n in names if re.fullmatch(r"[a-z][a-z0-9_]*", n)]
    assert len(names) == len(set(names))
