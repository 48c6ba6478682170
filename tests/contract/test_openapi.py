"""GET /openapi.json and GET /docs (CONTRACT.md section 3)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from openapi_spec_validator import validate

from contract.helpers import assert_json, describe, media_type

# The paths every project serves, with their methods (path parameters normalised to {}).
API = {
    "/health": {"get"},
    "/ready": {"get"},
    "/api/items": {"get", "post"},
    "/api/items/{}": {"get", "put", "patch", "delete"},
}
BODY_METHODS = {"post", "put", "patch"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local $refs expected: {ref}"
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _spec(api: httpx.Client) -> dict[str, Any]:
    spec = assert_json(api.get("/openapi.json"), 200)
    assert isinstance(spec, dict)
    return spec


def test_openapi_is_valid(api: httpx.Client) -> None:
    spec = _spec(api)
    assert str(spec.get("openapi", "")).startswith("3."), spec.get("openapi")
    validate(spec)


def test_openapi_describes_every_path_and_method(api: httpx.Client) -> None:
    spec = _spec(api)
    paths = {_norm(p): ops for p, ops in spec["paths"].items()}
    for path, methods in API.items():
        assert path in paths, f"{path} missing from /openapi.json paths: {sorted(spec['paths'])}"
        documented = {m for m in paths[path] if m in HTTP_METHODS}
        assert methods <= documented, f"{path}: documents {documented}, needs {methods}"
        for method in methods:
            op = paths[path][method]
            where = f"{method.upper()} {path}"
            responses = op.get("responses", {})
            success = [c for c in responses if str(c).startswith("2")]
            assert success, f"{where}: no success response documented"
            for code in success:
                resp = _resolve(spec, responses[code])
                if str(code) == "204":
                    assert not resp.get("content"), f"{where}: 204 documents a body"
                    continue
                content = resp.get("content", {})
                assert "application/json" in content, f"{where} {code}: no application/json body"
                assert content["application/json"].get("schema"), f"{where} {code}: no schema"
            if method in BODY_METHODS:
                body = _resolve(spec, op.get("requestBody", {}))
                content = body.get("content", {})
                assert "application/json" in content, f"{where}: no application/json request body"
                assert content["application/json"].get("schema"), f"{where}: no request schema"
                if method != "patch":
                    assert body.get("required") is True, f"{where}: request body not required"
    assert {code for code in paths["/api/items"]["post"]["responses"]} >= {"201"}
    assert "204" in {str(c) for c in paths["/api/items/{}"]["delete"]["responses"]}


def test_openapi_documents_the_list_parameters(api: httpx.Client) -> None:
    spec = _spec(api)
    op = {_norm(p): v for p, v in spec["paths"].items()}["/api/items"]["get"]
    params = {
        p["name"]: p for p in (_resolve(spec, p) for p in op.get("parameters", [])) if "name" in p
    }
    for name, minimum in (("limit", 1), ("offset", 0)):
        assert name in params and params[name]["in"] == "query", f"{name} not documented: {params}"
        schema = _resolve(spec, params[name].get("schema", {}))
        assert schema.get("type") == "integer", f"{name}: {schema}"
        assert schema.get("minimum") == minimum, f"{name}: {schema}"
    limit = _resolve(spec, params["limit"]["schema"])
    assert limit.get("maximum") == 100 and limit.get("default") == 20, limit


def test_openapi_name_schema(api: httpx.Client) -> None:
    """templates/README.md: name has minLength 1, maxLength 200 and a non-blank pattern."""
    spec = _spec(api)
    op = {_norm(p): v for p, v in spec["paths"].items()}["/api/items"]["post"]
    schema = _resolve(spec, op["requestBody"]["content"]["application/json"]["schema"])
    name = _resolve(spec, schema["properties"]["name"])
    assert name.get("minLength") == 1 and name.get("maxLength") == 200, name
    pattern = re.compile(name["pattern"])
    assert pattern.search("a") and pattern.search("  a ")
    assert not pattern.search("   ") and not pattern.search("\x00")
    assert set(schema.get("required", [])) == {"name", "quantity"}, schema
    assert schema.get("additionalProperties") is False, schema


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for attr in ("src", "href"):
            value = a.get(attr)
            if value and tag in {"script", "link", "img", "iframe"}:
                self.refs.append((tag, value))


def test_docs_are_served_offline(api: httpx.Client, server: Any) -> None:
    r = api.get("/docs")
    assert r.status_code == 200, describe(r)
    assert media_type(r) == "text/html", describe(r)
    html = r.text
    parser = _Refs()
    parser.feed(html)
    assert any(tag == "script" for tag, _ in parser.refs), f"/docs loads no script:\n{html}"
    origin = urlsplit(server.base_url)
    for tag, ref in parser.refs:
        url = urljoin(f"{server.base_url}/docs", ref)
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc), (
            f"/docs references <{tag}> {ref} on another host; docs must work offline"
        )
        asset = api.get(url)
        assert asset.status_code == 200, f"/docs asset {ref}" + describe(asset)
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com"):
        assert cdn not in html, f"/docs mentions {cdn}"
    assert "/openapi.json" in html or any("initializer" in ref for _, ref in parser.refs), (
        "/docs does not point Swagger UI at /openapi.json"
    )
