"""GET / redirects to the docs (docs/CONTRACT.md section 3): the root is not a dead end."""

from __future__ import annotations

from urllib.parse import urljoin

import harness
import httpx
import pytest

from contract.helpers import assert_problem, describe


@pytest.mark.parametrize("accept", ["text/html,application/xhtml+xml,*/*", "application/json"])
def test_root_redirects_to_the_docs(api: httpx.Client, server: harness.Server, accept: str) -> None:
    """302, the same in every starter: not cached by browsers, unlike a permanent redirect."""
    r = api.get("/", headers={"Accept": accept}, follow_redirects=False)
    assert r.status_code == 302, describe(r)
    location = r.headers.get("location", "")
    assert urljoin(f"{server.base_url}/", location) == f"{server.base_url}/docs", describe(r)
    assert r.headers.get("x-content-type-options") == "nosniff", describe(r)
    assert r.headers.get("x-request-id"), describe(r)
    docs = api.get(location)
    assert docs.status_code == 200, describe(docs)


def test_root_answers_only_get(api: httpx.Client) -> None:
    r = api.post("/", json={}, headers={"Accept": "text/html"})
    assert_problem(r, 405)
    allow = {m.strip().upper() for m in r.headers.get("allow", "").split(",") if m.strip()}
    assert "GET" in allow, "Allow must list GET" + describe(r)
    assert "POST" not in allow, "Allow must not list POST" + describe(r)
