"""The pages people look at, in a real browser: /docs, / and the admin UI.

docs/CONTRACT.md section 3 (GET /docs, GET /) and section 6 (needs_admin), driven
in Debian's chromium (tests/browser.py). Chromium costs seconds per page, so each
test runs on one variant per framework in the sample (the default one; for the
admin, the first with needs_admin) and on every variant with --full-matrix. The
tests use the variant's main server, in its xdist group.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import harness
import httpx
from browser import Admin, SwaggerUI, Tab
from matrix import PROJECT_ANSWERS, Variant

from contract.helpers import BLANK, DETAILS, QUANTITY, assert_json, create, uniq
from contract.test_admin import create_admin_user

DUPLICATE = DETAILS[409]

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
DOCS_TITLE = f"{PROJECT_ANSWERS['project_name']} - API docs"


def _items_from(api: httpx.Client, offset: int) -> list[dict[str, Any]]:
    """Every item from ``offset`` on (in id order), over HTTP."""
    items: list[dict[str, Any]] = []
    while True:
        page = assert_json(api.get("/api/items", params={"limit": 100, "offset": offset}), 200)
        items += page["items"]
        offset += 100
        if offset >= page["total"]:
            return items


def _total(api: httpx.Client) -> int:
    return int(assert_json(api.get("/api/items", params={"limit": 1}), 200)["total"])


@harness.once_per_framework
def test_docs_page_renders_offline(variant: Variant, tab: Tab, api: httpx.Client) -> None:
    """/ leads to /docs: Swagger UI 5 titled after the project, listing every operation of
    the document, with no request to another host and no console error."""
    tab.goto("/")
    assert tab.page.url == f"{tab.base_url}/docs", f"/ led to {tab.page.url}\n" + tab.record()
    ui = SwaggerUI(tab).open()
    assert tab.page.title() == DOCS_TITLE
    version = tab.page.evaluate("() => window.versions && window.versions.swaggerUI.version")
    assert str(version).startswith("5."), f"Swagger UI {version}, not 5"
    assert not tab.page.locator(".topbar").count(), "Swagger UI's top bar (Explore box) is shown"
    # Swagger UI never asks its online validator about a spec on 127.0.0.1, so the request
    # record below cannot show it: the page must switch it off for deployed servers.
    validator = tab.page.evaluate("() => ui.getConfigs().validatorUrl")
    assert validator is None, f"Swagger UI's online validator is on: {validator}"
    document = assert_json(api.get("/openapi.json"), 200)
    expected = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert ui.operations() == expected
    tab.assert_stayed_local()
    tab.assert_no_console_error()


def _docs(tab: Tab, server: harness.Server) -> SwaggerUI:
    """The docs page; with needs_auth, authorized as the default user (password flow)."""
    ui = SwaggerUI(tab).open()
    if server.auth:
        user = server.user()
        ui.authorize(user.username, user.password)
    return ui


@harness.once_per_framework
def test_try_it_out_lists_the_items(
    variant: Variant, tab: Tab, api: httpx.Client, server: harness.Server
) -> None:
    """Try it out on GET /api/items shows the stored items (the last page: the one just
    made). With needs_auth: a 401 before Authorize, then Authorize with the password
    flow, and the same Try it out shows 200."""
    item = create(api, name=uniq("browser"))
    total = _total(api)
    if server.auth:
        operation = SwaggerUI(tab).open().operation("GET", "/api/items").try_it_out()
        refused = operation.execute()
        assert refused.status == 401, refused.body
        # The browser logs the expected 401 as a failed resource load: not a page error.
        tab.console_errors[:] = [e for e in tab.console_errors if "401" not in e]
        tab.goto("/docs")  # a fresh page: Swagger UI keeps the last response shown
    operation = _docs(tab, server).operation("GET", "/api/items").try_it_out()
    operation.set_parameter("offset", str(total - 1))
    shown = operation.execute()
    assert shown.status == 200, shown.body
    page = shown.json()
    assert page["total"] == total and page["offset"] == total - 1, page
    assert [(i["id"], i["name"]) for i in page["items"]] == [(item["id"], item["name"])], page
    tab.assert_stayed_local()
    tab.assert_no_console_error()


@harness.once_per_framework
def test_try_it_out_creates_the_proposed_example(
    variant: Variant, tab: Tab, api: httpx.Client, server: harness.Server
) -> None:
    """Try it out on POST /api/items, with the body the page proposes, untouched: 201."""
    operation = _docs(tab, server).operation("POST", "/api/items").try_it_out()
    proposed = json.loads(operation.body())
    # The example's name may be taken by an earlier run of the suite on this server.
    for item in _items_from(api, 0):
        if item["name"] == str(proposed.get("name", "")).strip():
            assert api.delete(f"/api/items/{item['id']}").status_code == 204
    shown = operation.execute()
    assert shown.status == 201, f"the proposed body {proposed} got {shown.status}: {shown.body}"
    created = shown.json()
    stored = assert_json(api.get(f"/api/items/{created['id']}"), 200)
    assert stored["name"] == str(proposed["name"]).strip(), stored
    assert api.delete(f"/api/items/{created['id']}").status_code == 204
    tab.assert_stayed_local()
    tab.assert_no_console_error()


@harness.only_if(lambda v: v.needs_admin)
@harness.once_per_framework
def test_admin_saves_valid_items_and_shows_field_errors(
    variant: Variant,
    project: Path,
    server: harness.Server,
    main_db: Any,
    tab: Tab,
    api: httpx.Client,
) -> None:
    """Log in, add a valid item; an invalid one and a duplicate show field errors on the
    page, and over HTTP only the valid item was stored. With needs_auth the admin is a
    user with is_admin (`make createadmin`), after Authorize on /docs in the same browser;
    the API calls are that admin's (who sees every item)."""
    admin = create_admin_user(project, main_db.url, server.env["SECRET_KEY"])
    username, password = admin.username, admin.password
    if server.auth:
        SwaggerUI(tab).open().authorize(username, password)
        api = server.client(auth=server.bearer(admin))
    before = _total(api)
    admin = Admin(tab, variant.framework)
    admin.log_in(username, password)

    name = uniq("admin")
    admin.add_item(name, "3")
    stored = [(i["name"], i["quantity"]) for i in _items_from(api, before)]
    assert stored == [(name, 3)], f"after saving a valid item, the new items are {stored}"

    admin.add_item("   ", "-3")
    errors = {field: admin.field_error(field) for field in ("name", "quantity")}
    assert BLANK in errors["name"] and QUANTITY in errors["quantity"], (
        f"an invalid item: field errors {errors}\n" + tab.record()
    )

    # A duplicate is known only once the database refuses it: beside the name field
    # where the admin checks it first, else as the form's own error, in words either way.
    admin.add_item(name, "4")
    page = tab.page.inner_text("body")
    assert DUPLICATE in admin.field_error("name") or DUPLICATE in page, (
        "a duplicate name: no error in words\n" + tab.record()
    )
    assert "IntegrityError" not in page and "SQL" not in page, page

    stored = [(i["name"], i["quantity"]) for i in _items_from(api, before)]
    assert stored == [(name, 3)], f"only the valid item may be stored; found {stored}"
    tab.assert_stayed_local()
