"""Debian's chromium, driven by Playwright, for the template's browser tests.

Playwright comes from PyPI (the template's dev group) and drives the system's
``/usr/bin/chromium`` (Debian's ``chromium`` package; ``.ci/run`` installs it):
never ``playwright install``, which downloads a browser of its own.

- ``Chromium``: one headless browser per pytest process (per xdist worker).
- ``Tab``: a fresh browser context and page on one server. It records every
  request the page makes and every console error; requests to any other origin
  are recorded and aborted, so a page that calls out fails its test instead of
  hanging on this machine's closed network. ``save_artifacts`` keeps a
  screenshot and that record (the contract suite's conftest calls it when a
  test fails).
- ``SwaggerUI`` and ``Operation``: the docs page, seen as a user sees it
  (expand an operation, "Try it out", fill a parameter, "Execute", read the
  live response), and Authorize with the OAuth2 password flow (``needs_auth``).
- ``Admin``: the admin UIs (Django admin, sqladmin, Flask-Admin): log in, fill
  the item form, read a field's error.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Headless (Playwright adds the flag and a new, empty profile directory), as root, on a
# machine without network: no sandbox (root), no GPU, and no background calls to
# Google's services (each would be refused and logged).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


class BrowserUnavailable(RuntimeError):
    """chromium is not installed."""


class Chromium:
    """One headless chromium (Playwright's sync API), started on first use."""

    def __init__(self) -> None:
        if not Path(CHROMIUM).exists():
            raise BrowserUnavailable(
                f"{CHROMIUM} not found: the browser tests need Debian's chromium "
                "(apt-get install chromium; .ci/run installs it)"
            )
        self._manager = sync_playwright()
        self._playwright = self._manager.start()
        self._browser = self._playwright.chromium.launch(
            executable_path=CHROMIUM, args=FLAGS, headless=True
        )

    def tab(self, base_url: str, artifacts: Path) -> Tab:
        context = self._browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        return Tab(context, base_url, artifacts)

    def close(self) -> None:
        self._browser.close()
        self._manager.__exit__(None, None, None)


@dataclass
class Tab:
    """A page on one server, with a record of what it asked for and what it logged."""

    context: Any
    base_url: str
    artifacts: Path
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc)
        self.context.route(lambda url: not self._is_local(url), self._refuse)
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(f"{r.method} {r.url}"))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))

    def _is_local(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in {"data", "blob", "about"}:
            return True
        return (parts.scheme, parts.netloc) == self._origin

    def _refuse(self, route: Any) -> None:
        self.foreign.append(route.request.url)
        route.abort()

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def assert_stayed_local(self) -> None:
        assert not self.foreign, (
            f"the page asked hosts other than {self.base_url}: {self.foreign}\n" + self.record()
        )

    def assert_no_console_error(self) -> None:
        assert not self.console_errors, f"console errors: {self.console_errors}\n" + self.record()

    def record(self) -> str:
        return (
            f"page: {self.page.url}\nrequests:\n"
            + "".join(f"  {r}\n" for r in self.requests)
            + "console errors:\n"
            + "".join(f"  {e}\n" for e in self.console_errors)
            + "refused (other hosts):\n"
            + "".join(f"  {u}\n" for u in self.foreign)
        )

    def save_artifacts(self, name: str) -> str:
        """Keep a full-page screenshot and the request/console record; says where."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[-150:]
        record = self.artifacts / f"{stem}.txt"
        record.write_text(self.record())
        shot = self.artifacts / f"{stem}.png"
        try:
            self.page.screenshot(path=str(shot), full_page=True)
        except PlaywrightError as exc:  # the page may be gone; the record is still kept
            return f"no screenshot ({exc}); page record: {record}"
        return f"screenshot: {shot}; page record: {record}"

    def close(self) -> None:
        self.context.close()


# --------------------------------------------------------------------------- Swagger UI


@dataclass
class LiveResponse:
    """What Swagger UI shows under "Server response" after Execute."""

    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


class Operation:
    """One operation block of the docs page (e.g. GET /api/items)."""

    def __init__(self, tab: Tab, method: str, path: str) -> None:
        self.tab = tab
        self.method = method.lower()
        page = tab.page
        self.block = page.locator(f".opblock.opblock-{self.method}").filter(
            has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
        )

    def expand(self) -> Operation:
        if not self.block.locator(".opblock-body").count():
            self.block.locator(".opblock-summary").first.click()
        self.block.locator(".opblock-body").wait_for()
        return self

    def try_it_out(self) -> Operation:
        self.expand()
        self.block.locator("button.try-out__btn").click()
        self.block.locator("button.execute").wait_for()
        return self

    def set_parameter(self, name: str, value: str) -> Operation:
        self.block.locator(f'tr[data-param-name="{name}"] input').fill(value)
        return self

    def body(self) -> str:
        """The request body Swagger UI proposes (its example), as shown in the editor."""
        return str(self.block.locator("textarea.body-param__text").input_value())

    def execute(self) -> LiveResponse:
        self.block.locator("button.execute").click()
        row = self.block.locator(".live-responses-table .response").first
        row.wait_for()
        status = row.locator(".response-col_status").inner_text().strip()
        body = row.locator(".response-col_description pre").first.inner_text()
        return LiveResponse(int(status.split()[0]), body)


class SwaggerUI:
    """The /docs page of a server."""

    def __init__(self, tab: Tab) -> None:
        self.tab = tab

    def open(self) -> SwaggerUI:
        response = self.tab.goto("/docs")
        assert response is not None and response.status == 200, "GET /docs" + self.tab.record()
        self.tab.page.locator(".opblock").first.wait_for()
        return self

    def operations(self) -> set[tuple[str, str]]:
        """(METHOD, path) of every operation listed."""
        rows = self.tab.page.locator(".opblock-summary").evaluate_all(
            """els => els.map(e => [
                e.querySelector('.opblock-summary-method').textContent.trim(),
                e.querySelector('.opblock-summary-path').getAttribute('data-path')])"""
        )
        return {(m.upper(), p) for m, p in rows}

    def operation(self, method: str, path: str) -> Operation:
        return Operation(self.tab, method, path)

    def authorize(self, username: str, password: str) -> None:
        """Authorize with the OAuth2 password flow, as a person does: the Authorize
        button, username and password in the dialog, its Authorize button; the dialog
        then offers Logout (it shows the token endpoint's error otherwise). Closes it."""
        page = self.tab.page
        page.locator(".auth-wrapper button.authorize").click()
        dialog = page.locator(".dialog-ux .modal-ux")
        dialog.wait_for()
        dialog.locator("#oauth_username").fill(username)
        dialog.locator("#oauth_password").fill(password)
        dialog.locator(".auth-btn-wrapper button.authorize").click()
        # Authorized, the dialog's Authorize button turns into Logout.
        logout = dialog.locator(".auth-btn-wrapper button", has_text="Logout")
        errors = dialog.locator(".errors")
        logout.or_(errors).first.wait_for()
        assert logout.count(), f"Authorize failed: {errors.all_inner_texts()}\n" + self.tab.record()
        dialog.locator(".auth-btn-wrapper button.btn-done").click()
        dialog.wait_for(state="detached")


# --------------------------------------------------------------------------- admin UIs

# Where each admin UI adds an item.
ADMIN_ADD_ITEM = {
    "drf": "/admin/items/item/add/",  # Django admin
    "fastapi": "/admin/item/create",  # sqladmin
    "flask": "/admin/item/new/",  # Flask-Admin
}

# The error a form shows beside a field, in any of the admins (Django's errorlist,
# Bootstrap's invalid-feedback in sqladmin and Flask-Admin): the error elements in the
# field's own container, the largest ancestor of the input that holds no other field.
_FIELD_ERROR_JS = """input => {
  let box = input;
  const named = 'input[name]:not([type=hidden]), textarea[name], select[name]';
  while (box.parentElement && box.parentElement.tagName !== 'FORM'
         && box.parentElement.querySelectorAll(named).length <= 1) {
    box = box.parentElement;
  }
  const errors = box.querySelectorAll('.errorlist, .invalid-feedback');
  return Array.from(errors).map(e => e.textContent.trim()).filter(t => t).join(' | ');
}"""


class Admin:
    """An admin UI at /admin/, driven through its pages."""

    def __init__(self, tab: Tab, framework: str) -> None:
        self.tab = tab
        self.add_item_path = ADMIN_ADD_ITEM[framework]

    def log_in(self, username: str, password: str) -> None:
        page = self.tab.page
        self.tab.goto("/admin/")
        password_input = page.locator("input[type=password]")
        password_input.wait_for()
        form = page.locator("form").filter(has=password_input)
        user = form.locator("input[name=username], input[type=email], input[type=text]").first
        user.fill(username)
        password_input.fill(password)
        password_input.press("Enter")
        page.wait_for_load_state()
        assert not page.locator("input[type=password]").count(), (
            "still a password field after logging in\n" + self.tab.record()
        )

    def add_item(self, name: str, quantity: str) -> None:
        """Fill the item form with ``name`` and ``quantity`` and press its first Save."""
        page = self.tab.page
        self.tab.goto(self.add_item_path)
        form = page.locator("form").filter(has=page.locator("[name=quantity]"))
        form.locator("[name=name]").fill(name)
        form.locator("[name=quantity]").fill(quantity)
        form.locator("[type=submit]").first.click()
        page.wait_for_load_state()

    def field_error(self, name: str) -> str:
        """The error text the form shows beside field ``name`` (empty when none)."""
        field = self.tab.page.locator(f"form [name={name}]")
        if not field.count():
            return ""
        return str(field.first.evaluate(_FIELD_ERROR_JS))
