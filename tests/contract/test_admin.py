"""needs_admin: an admin UI at /admin/ behind a login; `make createadmin` (docs/CONTRACT.md section 6)."""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import harness
import httpx
from matrix import PROJECT_ANSWERS, Variant

from contract.helpers import (
    BLANK,
    DETAILS,
    QUANTITY,
    SIGN_IN_THROTTLED,
    Database,
    assert_json,
    assert_problem,
    create,
    describe,
)

only_admin = harness.only_if(lambda v: v.needs_admin)
PROJECT_NAME = PROJECT_ANSWERS["project_name"]
DUPLICATE_NAME = DETAILS[409]
without_admin = harness.only_if(lambda v: not v.needs_admin)


@without_admin
def test_no_admin_without_needs_admin(variant: Variant, server: harness.Server) -> None:
    """Without needs_admin there is no admin UI: /admin/ is an unknown path (404 problem)."""
    with server.client() as api:
        for path in ("/admin/", "/admin/login"):
            assert_problem(api.get(path), 404)


class _Form(HTMLParser):
    """The first form holding a password input: its action and inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []
        self._current: dict[str, object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {"action": a.get("action", ""), "method": a.get("method", "get"),
                             "inputs": {}, "types": {}}  # fmt: skip
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current["inputs"][a["name"]] = a.get("value", "")  # type: ignore[index]
            self._current["types"][a["name"]] = a.get("type", "text").lower()  # type: ignore[index]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None

    def login_form(self) -> dict[str, object] | None:
        for form in self.forms:
            if "password" in form["types"].values():  # type: ignore[attr-defined]
                return form
        return None


def _login_form(html: str) -> dict[str, object] | None:
    parser = _Form()
    parser.feed(html)
    return parser.login_form()


class _Jar:
    """Cookies kept by hand: the admin may mark them Secure even on plain HTTP."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def absorb(self, r: httpx.Response) -> None:
        for header in r.headers.get_list("set-cookie"):
            pair = header.split(";", 1)[0]
            if "=" in pair:
                k, v = pair.split("=", 1)
                self.cookies[k.strip()] = v.strip()

    def header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}


def _get(api: httpx.Client, jar: _Jar, url: str) -> httpx.Response:
    r = api.get(url, headers={**jar.header(), "Accept": "text/html"})
    jar.absorb(r)
    return r


# The framework's standard password hasher, as each starter leaves it configured, and the
# smallest cost accepted: the framework's default when the starter was written.
PASSWORD_HASHES = {
    # Django's default PASSWORD_HASHERS: PBKDF2-SHA256, 1,000,000 iterations in Django 5.2.
    "drf": (
        re.compile(r"pbkdf2_sha256\$(?P<cost>\d+)\$[A-Za-z0-9]{22}\$[A-Za-z0-9+/]{43}="),
        1_000_000,
    ),
    # pwdlib's PasswordHash.recommended(): Argon2id, memory cost in KiB (64 MiB by default).
    "fastapi": (
        re.compile(
            r"\$argon2id\$v=19\$m=(?P<cost>\d+),t=(?P<t>\d+),p=\d+"
            r"\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}"
        ),
        65536,
    ),
    # werkzeug's generate_password_hash default: scrypt, N = 2**15, r = 8, p = 1.
    "flask": (re.compile(r"scrypt:(?P<cost>\d+):8:1\$[A-Za-z0-9]{16}\$[0-9a-f]{128}"), 32768),
}


# With needs_auth the admin signs in the API's users, whose passwords the shared
# security.py hashes (pwdlib's Argon2id) in every starter but DRF (Django's hasher).
AUTH_PASSWORD_HASHES = {
    "drf": PASSWORD_HASHES["drf"],
    "other": PASSWORD_HASHES["fastapi"],
}


def _stored_password(variant: Variant, db: Database, username: str) -> list[str]:
    """What the database stores as the admin user's password (one value per matching row)."""
    if variant.framework == "drf":
        table, column = "auth_user", "password"
    elif variant.needs_auth:
        table, column = "users", "password_hash"
    else:
        table, column = "admin_users", "password_hash"
    if db.kind == "sqlite":
        assert db.sqlite_path is not None
        with sqlite3.connect(db.sqlite_path, timeout=30) as con:
            rows = con.execute(f"SELECT {column} FROM {table} WHERE username = ?", (username,))
            return [str(r[0]) for r in rows]
    assert re.fullmatch(r"admin\d+", username)  # safe to quote by hand
    return db.psql(f"SELECT {column} FROM {table} WHERE username = '{username}'").splitlines()


def _assert_password_hashed(variant: Variant, db: Database, username: str, password: str) -> None:
    stored = _stored_password(variant, db, username)
    assert len(stored) == 1, f"expected one admin user {username!r}, found {stored}"
    value = stored[0]
    assert password not in value, f"the admin password is stored in plain text: {value!r}"
    if variant.needs_auth:
        key = "drf" if variant.framework == "drf" else "other"
        pattern, min_cost = AUTH_PASSWORD_HASHES[key]
    else:
        pattern, min_cost = PASSWORD_HASHES[variant.framework]
    m = pattern.fullmatch(value)
    assert m, f"{variant.framework}: not the standard hash format {pattern.pattern}: {value!r}"
    assert int(m["cost"]) >= min_cost, f"hash cost below {min_cost}: {value!r}"
    if "t" in pattern.groupindex:
        assert int(m["t"]) >= 2, f"Argon2 time cost below 2: {value!r}"


def create_admin_user(project: Path, database_url: str, secret_key: str) -> harness.User:
    """`make createadmin` as a person runs it in production, with a fresh username and
    password. With needs_auth it creates a user with is_admin (USERNAME, PASSWORD);
    without, an admin of the admin UI's own (ADMIN_USERNAME, ADMIN_PASSWORD)."""
    username, password = f"admin{secrets.randbelow(10**6)}", secrets.token_urlsafe(16)
    env: dict[str, str | None] = {
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "production",
        "SECRET_KEY": secret_key,
    }
    if harness.has_auth(project):
        env |= {"USERNAME": username, "PASSWORD": password}
    else:
        env |= {"ADMIN_USERNAME": username, "ADMIN_PASSWORD": password}
    out = harness.make(project, "createadmin", env=env, timeout=120)
    found = harness.CREATED.search(out)
    user_id = int(found["id"]) if found else 0
    assert user_id or not harness.has_auth(project), (
        f"`make createadmin` did not print `created user {username} (id N)`:\n{out}"
    )
    return harness.User(username, password, user_id, is_admin=True)


def create_admin(project: Path, database_url: str, secret_key: str) -> tuple[str, str]:
    """`make createadmin` (create_admin_user); returns the username and password."""
    user = create_admin_user(project, database_url, secret_key)
    return user.username, user.password


@only_admin
def test_admin_requires_login_and_createadmin_works(
    variant: Variant,
    project: Path,
    databases: Callable[[], Database],
    start_server: Callable[..., harness.Server],
) -> None:
    db = databases()
    srv = start_server(database=db, name="admin")
    jar = _Jar()
    with srv.client(follow_redirects=False) as api:
        r = _get(api, jar, "/admin/")
        if r.status_code in (301, 302, 303, 307, 308):
            page = _follow(api, jar, srv.base_url, r)  # /admin/ may open on a model's page first
            login_url = str(page.url)
            assert urlsplit(login_url).netloc == urlsplit(srv.base_url).netloc, describe(r)
            assert page.status_code == 200, "the login page" + describe(page)
            form = _login_form(page.text)
            assert form, "the page /admin/ redirects to has no login form" + describe(page)
        elif r.status_code in (401, 403):
            login_url, form = None, None
        else:
            assert r.status_code == 200, "unauthenticated /admin/" + describe(r)
            form = _login_form(r.text)
            assert form, "/admin/ shows the admin without a login" + describe(r)
            login_url = f"{srv.base_url}/admin/"

        username, password = create_admin(project, db.url, srv.env["SECRET_KEY"])
        _assert_password_hashed(variant, db, username, password)

        if form is None or login_url is None:
            return  # 401/403 without a login page: nothing more to drive black-box
        submit_login(api, jar, srv.base_url, login_url, form, username, password)


def submit_login(
    api: httpx.Client,
    jar: _Jar,
    base_url: str,
    login_url: str,
    form: dict[str, object],
    username: str,
    password: str,
) -> httpx.Response:
    """Fill in and post the admin's login form, then check that /admin/ is the admin.

    Returns the page the login lands on (its redirects followed)."""
    inputs: dict[str, str] = dict(form["inputs"])  # type: ignore[call-overload]
    types: dict[str, str] = form["types"]  # type: ignore[assignment]
    user_field = next(
        (n for n in ("username", "user", "login", "email") if n in inputs), None
    ) or next((n for n, t in types.items() if t in {"text", "email"}), None)
    pass_field = next(n for n, t in types.items() if t == "password")
    assert user_field, f"no username field in the login form: {inputs}"
    inputs[user_field] = username
    inputs[pass_field] = password
    action = urljoin(login_url, str(form["action"]) or login_url)
    r = api.post(
        action,
        data=inputs,
        headers={**jar.header(), "Referer": login_url, "Accept": "text/html"},
    )
    jar.absorb(r)
    assert r.status_code in (200, 302, 303), "login" + describe(r)
    landing = _follow(api, jar, base_url, r)
    r = _follow(api, jar, base_url, _get(api, jar, "/admin/"))
    assert r.status_code == 200, "/admin/ after logging in" + describe(r)
    assert _login_form(r.text) is None, "still the login form after logging in" + describe(r)
    return landing


def _follow(api: httpx.Client, jar: _Jar, base_url: str, r: httpx.Response) -> httpx.Response:
    """Follow a few redirects (an admin index may redirect once more, e.g. to a model list)."""
    for _ in range(3):
        if r.status_code not in (301, 302, 303, 307, 308):
            break
        r = _get(api, jar, urljoin(str(r.url), r.headers["location"]))
    return r


# Where each admin lists the items, and adds one: the page after logging in is the list.
ITEM_PAGES = {
    "drf": ("/admin/items/item/", "/admin/items/item/add/"),
    "fastapi": ("/admin/item/list", "/admin/item/create"),
    "flask": ("/admin/item/", "/admin/item/new/"),
}
# What no page of an admin may show: a database error, its SQL, a traceback.
RAW_ERRORS = (
    "IntegrityError",
    "[SQL:",
    "[parameters:",
    "sqlalche.me",
    "Traceback",
    "CHECK constraint",
)


class _Page(HTMLParser):
    """A page's links (text and href) and the hidden inputs of its forms."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.hidden: dict[str, str] = {}
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self._href, self._text = a["href"], []
        elif tag == "input" and a.get("type", "").lower() == "hidden" and a.get("name"):
            self.hidden[a["name"]] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((" ".join("".join(self._text).split()), self._href))
            self._href = None


def _page(html: str) -> _Page:
    parser = _Page()
    parser.feed(html)
    return parser


def _save_item(
    api: httpx.Client, jar: _Jar, base_url: str, add_path: str, **fields: str
) -> httpx.Response:
    """Fill in the admin's add-item form (with its hidden inputs, e.g. a CSRF token) and post it."""
    form = _get(api, jar, add_path)
    assert form.status_code == 200, "the add-item form" + describe(form)
    data = {**_page(form.text).hidden, "description": "", **fields}
    r = api.post(
        add_path,
        data=data,
        headers={**jar.header(), "Referer": f"{base_url}{add_path}", "Accept": "text/html"},
    )
    jar.absorb(r)
    return r


@only_admin
def test_admin_lands_on_items_and_saves_by_the_api_rules(
    variant: Variant,
    project: Path,
    databases: Callable[[], Database],
    start_server: Callable[..., harness.Server],
) -> None:
    """After logging in: the item list, the project's name, View site -> /docs; a save that
    breaks the item rules or repeats a name is refused with the API's words at the form,
    never a database error, and nothing is stored."""
    db = databases()
    srv = start_server(database=db, name="admin-rules")
    admin = create_admin_user(project, db.url, srv.env["SECRET_KEY"])
    username, password = admin.username, admin.password
    list_path, add_path = ITEM_PAGES[variant.framework]
    jar = _Jar()
    # With needs_auth, the API calls here are the admin's too: an admin sees every item.
    auth = {"auth": srv.bearer(admin)} if variant.needs_auth else {}
    with srv.client(follow_redirects=False, **auth) as api:
        page = _follow(api, jar, srv.base_url, _get(api, jar, "/admin/"))
        form = _login_form(page.text)
        assert form, "no login form behind /admin/" + describe(page)
        landing = submit_login(api, jar, srv.base_url, str(page.url), form, username, password)
        assert landing.status_code == 200, describe(landing)
        assert urlsplit(str(landing.url)).path == list_path, "the page after logging in"
        assert f"{PROJECT_NAME} admin" in landing.text, "the admin carries the project's name"

        view_site = [href for text, href in _page(landing.text).links if text == "View site"]
        assert len(view_site) == 1, f"one View site link: {_page(landing.text).links}"
        target = _follow(
            api, jar, srv.base_url, _get(api, jar, urljoin(str(landing.url), view_site[0]))
        )
        assert urlsplit(str(target.url)).path == "/docs", "View site" + describe(target)
        assert target.status_code == 200, "View site" + describe(target)

        r = _save_item(api, jar, srv.base_url, add_path, name=" \t ", quantity="-3")
        assert r.status_code in (200, 400), "an invalid save is refused" + describe(r)
        for message in (BLANK, QUANTITY):
            assert message in r.text, f"the form shows {message!r}" + describe(r)
        assert not any(raw in r.text for raw in RAW_ERRORS), "a database error shown" + describe(r)

        taken = create(api, name="sprocket")
        r = _save_item(api, jar, srv.base_url, add_path, name=" sprocket ", quantity="2")
        assert r.status_code in (200, 400), "a duplicate name is refused" + describe(r)
        assert DUPLICATE_NAME in r.text, f"the form shows {DUPLICATE_NAME!r}" + describe(r)
        assert not any(raw in r.text for raw in RAW_ERRORS), "a database error shown" + describe(r)

        items = assert_json(api.get("/api/items"), 200)["items"]
        assert items == [taken], "the refused saves stored nothing"


@harness.only_if(lambda v: v.needs_admin and v.needs_auth)
def test_admin_logs_in_users_and_counts_wrong_logins(
    variant: Variant, server: harness.Server
) -> None:
    """With needs_auth the admin signs in the API's users: an is_admin user gets in, one
    without is_admin does not; wrong passwords at the admin's login count toward the
    token endpoint's throttle (5 failures, then 429 for that username)."""
    admin = server.user(f"admin{secrets.randbelow(10**6)}", admin=True)
    plain = server.user(f"plain{secrets.randbelow(10**6)}")
    with server.client(follow_redirects=False, authenticated=False) as api:
        jar = _Jar()
        page = _follow(api, jar, server.base_url, _get(api, jar, "/admin/"))
        form = _login_form(page.text)
        assert form, "no login form behind /admin/" + describe(page)
        submit_login(api, jar, server.base_url, str(page.url), form, admin.username, admin.password)

        # A user without is_admin: still the login form (or a refusal), never the admin.
        jar = _Jar()
        page = _follow(api, jar, server.base_url, _get(api, jar, "/admin/"))
        _try_login(api, jar, server.base_url, str(page.url), _login_form(page.text),
                   plain.username, plain.password)  # fmt: skip
        after = _follow(api, jar, server.base_url, _get(api, jar, "/admin/"))
        assert after.status_code != 200 or _login_form(after.text), (
            "a user without is_admin got into the admin" + describe(after)
        )

        for attempt in range(5):
            jar = _Jar()
            page = _follow(api, jar, server.base_url, _get(api, jar, "/admin/"))
            _try_login(api, jar, server.base_url, str(page.url), _login_form(page.text),
                       admin.username, f"wrong-password-{attempt}")  # fmt: skip
        r = api.post(
            "/api/auth/token", data={"username": admin.username, "password": admin.password}
        )
        assert_problem(r, 429, detail=SIGN_IN_THROTTLED)


def _try_login(
    api: httpx.Client,
    jar: _Jar,
    base_url: str,
    login_url: str,
    form: dict[str, object] | None,
    username: str,
    password: str,
) -> httpx.Response:
    """Post the login form with these credentials; the response (redirects followed)."""
    assert form, f"no login form at {login_url}"
    inputs: dict[str, str] = dict(form["inputs"])  # type: ignore[call-overload]
    types: dict[str, str] = form["types"]  # type: ignore[assignment]
    user_field = next(
        (n for n in ("username", "user", "login", "email") if n in inputs), None
    ) or next(n for n, t in types.items() if t in {"text", "email"})
    pass_field = next(n for n, t in types.items() if t == "password")
    inputs[user_field], inputs[pass_field] = username, password
    r = api.post(
        urljoin(login_url, str(form["action"]) or login_url),
        data=inputs,
        headers={**jar.header(), "Referer": login_url, "Accept": "text/html"},
    )
    jar.absorb(r)
    return _follow(api, jar, base_url, r)
