"""GET /openapi.json and GET /docs (docs/CONTRACT.md section 3)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from jsonschema import Draft202012Validator
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


NAMES_ACCEPTED = [
    "a",
    "  a ",
    "x" * 200,
    "  " + "y" * 200 + "\t",  # 200 after stripping (docs/CONTRACT.md counts after stripping)
    "\r" + "z" * 200,
    "\u00a0nbsp\u00a0",  # only " \t\n\r\f\v" are stripped
    "inner  spaces",
]
NAMES_REJECTED = ["", " ", " \t\n\r\f\v ", "x" * 201, "a\x00b", "\x00"]


def test_openapi_name_schema(api: httpx.Client) -> None:
    """The documented name accepts exactly what the contract accepts.

    templates/README.md: a pattern requiring one non-whitespace, non-NUL character;
    the length rule is 1..200 after stripping, so a raw-length maxLength of 200 would
    call valid names invalid (schemathesis reports that as ST201).
    """
    spec = _spec(api)
    op = {_norm(p): v for p, v in spec["paths"].items()}["/api/items"]["post"]
    schema = _resolve(spec, op["requestBody"]["content"]["application/json"]["schema"])
    assert set(schema.get("required", [])) == {"name", "quantity"}, schema
    assert schema.get("additionalProperties") is False, schema
    name = _resolve(spec, schema["properties"]["name"])
    assert name.get("type") == "string" and name.get("pattern"), name
    validator = Draft202012Validator(name)
    wrongly_rejected = [n for n in NAMES_ACCEPTED if not validator.is_valid(n)]
    wrongly_accepted = [n for n in NAMES_REJECTED if validator.is_valid(n)]
    assert not wrongly_rejected, f"the name schema rejects valid names {wrongly_rejected}: {name}"
    assert not wrongly_accepted, f"the name schema accepts invalid names {wrongly_accepted}: {name}"


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
