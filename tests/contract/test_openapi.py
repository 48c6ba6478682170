"""GET /openapi.json and GET /docs (docs/CONTRACT.md section 3)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from jsonschema import Draft202012Validator
from matrix import Variant
from openapi_spec_validator import validate

from contract.helpers import (
    BAD_CREDENTIALS,
    DETAILS,
    DUPLICATE_USERNAME,
    INVALID_TOKEN,
    MAX_ID,
    MAX_OFFSET,
    NOT_FORM_TYPE,
    SIGN_IN_THROTTLED,
    SIGN_UP_CLOSED,
    TITLES,
    UNAUTHENTICATED,
    assert_json,
    describe,
    media_type,
)

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
    assert spec.get("openapi") == "3.1.0", spec.get("openapi")
    validate(spec)
    assert spec["info"].get("description"), f"info has no description: {spec['info']}"


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


# --------------------------------------------------------------------------- one document
# Every starter describes its API in the same words, so that a client generated from any
# of them is the same (test_client.py).

OPERATION_IDS = {
    ("get", "/health"): "health",
    ("get", "/ready"): "ready",
    ("get", "/api/items"): "list_items",
    ("post", "/api/items"): "create_item",
    ("get", "/api/items/{}"): "get_item",
    ("put", "/api/items/{}"): "replace_item",
    ("patch", "/api/items/{}"): "update_item",
    ("delete", "/api/items/{}"): "delete_item",
}
SCHEMAS = {
    "ItemCreate",
    "ItemReplace",
    "ItemPatch",
    "ItemOut",
    "ItemPage",
    "Problem",
    "FieldError",
    "Health",
    "Readiness",
    "ReadinessChecks",
}
# What background_jobs adds (docs/CONTRACT.md section 9).
REPORT_OPERATION_IDS = {
    ("post", "/api/reports"): "create_report",
    ("get", "/api/reports/{}"): "get_report",
}
REPORT_SCHEMAS = {"ReportAccepted", "ReportOut", "ReportResult"}
# What needs_auth adds (docs/CONTRACT.md section 7).
AUTH_OPERATION_IDS = {
    ("post", "/api/auth/token"): "create_token",
    ("post", "/api/users"): "create_user",
    ("get", "/api/users/me"): "get_current_user",
    ("post", "/api/users/me/password"): "change_password",
}
# The token form's schema is inline in its request body (test_auth.py checks its fields).
AUTH_SCHEMAS = {"Token", "UserCreate", "UserOut", "PasswordChange"}
AUTH_REQUEST_SCHEMAS = {
    ("post", "/api/users"): "UserCreate",
    ("post", "/api/users/me/password"): "PasswordChange",
}
REQUEST_SCHEMAS = {"post": "ItemCreate", "put": "ItemReplace", "patch": "ItemPatch"}
PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, _norm(path)): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of `schema` whose local $refs resolve inside the document."""
    return Draft202012Validator({**schema, "components": spec["components"]})


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def test_openapi_names_operations_and_schemas_alike(api: httpx.Client, variant: Variant) -> None:
    spec = _spec(api)
    operations = _operations(spec)
    ids = {key: op.get("operationId") for key, op in operations.items()}
    expected_ids = OPERATION_IDS | (REPORT_OPERATION_IDS if variant.background_jobs else {})
    expected_schemas = SCHEMAS | (REPORT_SCHEMAS if variant.background_jobs else set())
    if variant.needs_auth:
        expected_ids |= AUTH_OPERATION_IDS
        expected_schemas |= AUTH_SCHEMAS
    assert ids == expected_ids, ids
    schemas = spec["components"]["schemas"]
    assert set(schemas) == expected_schemas, sorted(schemas)
    for (method, path), op in operations.items():
        where = f"{method.upper()} {path}"
        assert op.get("summary"), f"{where}: no summary"
        assert "servers" not in op, f"{where}: an operation-level servers list"
        for parameter in (_resolve(spec, p) for p in op.get("parameters", [])):
            assert parameter.get("description"), f"{where}: {parameter['name']} undescribed"
        body = op.get("requestBody")
        if body is not None and path == "/api/auth/token":
            assert set(body["content"]) == {"application/x-www-form-urlencoded"}, body
        elif body is not None:
            name = AUTH_REQUEST_SCHEMAS.get((method, path), REQUEST_SCHEMAS[method])
            schema = body["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{name}"}, schema


def test_openapi_documents_problems_everywhere(api: httpx.Client) -> None:
    """One Problem schema; a `default` problem response and real examples on every operation."""
    spec = _spec(api)
    problem = spec["components"]["schemas"]["Problem"]
    assert problem.get("required") and set(problem["required"]) == {
        "type",
        "title",
        "status",
        "detail",
    }, problem
    assert list(problem["properties"]) == ["type", "title", "status", "detail", "errors"], problem
    validator = _validator(spec, {"$ref": PROBLEM_REF})
    for (method, path), op in _operations(spec).items():
        where = f"{method.upper()} {path}"
        assert "default" in op["responses"], f"{where}: no default response"
        for code, response in op["responses"].items():
            description = response.get("description", "")
            assert description and description != description.upper(), (
                f"{where} {code}: description {description!r}"
            )
            media = response.get("content", {}).get(PROBLEM_JSON)
            if media is None:
                assert code != "default" and int(code) < 400 or path == "/ready", (
                    f"{where} {code}: not a problem+json response"
                )
                continue
            assert media["schema"] == {"$ref": PROBLEM_REF}, f"{where} {code}: {media}"
            example = media.get("example")
            status = 500 if code == "default" else int(code)
            assert isinstance(example, dict), f"{where} {code}: no example"
            validator.validate(example)
            assert example["status"] == status, f"{where} {code}: {example}"
            assert example["title"] == TITLES[status], f"{where} {code}: {example}"
            expected = _expected_details(path, status)
            if expected:
                assert example["detail"] in expected, f"{where} {code}: {example}"


def _expected_details(path: str, status: int) -> set[str]:
    """The details a problem example of this path and status may show (empty: any)."""
    if path == "/api/auth/token":
        token = {401: {BAD_CREDENTIALS}, 415: {NOT_FORM_TYPE}, 429: {SIGN_IN_THROTTLED}}
        return token.get(status, set())
    if path.startswith("/api/users"):
        users = {401: {UNAUTHENTICATED, INVALID_TOKEN}, 403: {SIGN_UP_CLOSED},
                 409: {DUPLICATE_USERNAME}}  # fmt: skip
        if status in users:
            return users[status]
    if status == 401:
        return {UNAUTHENTICATED, INVALID_TOKEN}
    return {DETAILS[status]} if status in DETAILS else set()


def test_openapi_shapes(api: httpx.Client, variant: Variant) -> None:
    """Timestamps, the nullable description, the Location header and integer bounds."""
    spec = _spec(api)
    schemas = spec["components"]["schemas"]
    item = schemas["ItemOut"]
    owner = ["owner_id"] if variant.needs_auth else []
    assert list(item["properties"]) == [
        "id",
        "name",
        "description",
        "quantity",
        "created_at",
        "updated_at",
        *owner,
    ], item
    if variant.needs_auth:
        owner_id = item["properties"]["owner_id"]
        assert owner_id.get("readOnly") is True, f"owner_id must be readOnly: {owner_id}"
        owner_schema = _validator(spec, owner_id)
        assert owner_schema.is_valid(None) and owner_schema.is_valid(3), owner_id
    assert set(item["required"]) == set(item["properties"]), item
    for stamp in ("created_at", "updated_at"):
        assert item["properties"][stamp].get("format") == "date-time", item["properties"][stamp]
    nullable = _validator(spec, item["properties"]["description"])
    assert nullable.is_valid(None) and nullable.is_valid("text"), item["properties"]["description"]
    page = schemas["ItemPage"]
    assert list(page["properties"]) == ["items", "total", "limit", "offset"], page
    readiness = schemas["Readiness"]
    assert readiness["properties"]["status"].get("type") == "string", readiness
    checks = _resolve(spec, readiness["properties"]["checks"])
    assert checks.get("type") == "object", readiness
    expected_checks = {"database", "broker"} if variant.background_jobs else {"database"}
    assert set(checks["properties"]) == expected_checks, checks
    assert set(checks.get("required", ())) == expected_checks, checks
    assert schemas["Health"]["properties"]["status"].get("type") == "string", schemas["Health"]

    operations = _operations(spec)
    created = operations[("post", "/api/items")]["responses"]["201"]
    location = created.get("headers", {}).get("Location", {})
    assert location.get("schema") == {"type": "string"} and location.get("description"), created
    if variant.background_jobs:
        accepted = operations[("post", "/api/reports")]["responses"]["202"]
        location = accepted.get("headers", {}).get("Location", {})
        assert location.get("schema") == {"type": "string"} and location.get("description"), (
            accepted
        )
        for name, stamps in (("ReportAccepted", ["created_at"]), ("ReportOut", ["created_at"])):
            for stamp in stamps:
                prop = schemas[name]["properties"][stamp]
                assert prop.get("format") == "date-time", f"{name}.{stamp}: {prop}"
        finished = _validator(spec, schemas["ReportOut"]["properties"]["finished_at"])
        assert finished.is_valid(None) and finished.is_valid("2026-01-01T00:00:00Z"), schemas[
            "ReportOut"
        ]
    bounds = {
        p["name"]: p["schema"]
        for p in (_resolve(spec, p) for p in operations[("get", "/api/items")]["parameters"])
    }
    bounds["item_id"] = next(
        _resolve(spec, p)["schema"] for p in operations[("get", "/api/items/{}")]["parameters"]
    )
    expected = {
        "limit": (1, 100, 20),
        "offset": (0, MAX_OFFSET, 0),
        "item_id": (1, MAX_ID, None),
    }
    for name, (low, high, default) in expected.items():
        schema = bounds[name]
        values = [schema.get("minimum"), schema.get("maximum"), schema.get("default", default)]
        assert values == [low, high, default], f"{name}: {schema}"
        assert all(_is_integer(v) for v in values if v is not None), f"{name}: {schema}"


def test_openapi_request_examples_work(api: httpx.Client) -> None:
    """The body Swagger UI proposes for each write is valid, and works sent unchanged."""
    spec = _spec(api)
    operations = _operations(spec)
    examples = {}
    for method, schema_name in REQUEST_SCHEMAS.items():
        path = "/api/items" if method == "post" else "/api/items/{}"
        media = operations[(method, path)]["requestBody"]["content"]["application/json"]
        example = media.get("example")
        assert isinstance(example, dict) and example, f"{method.upper()} {path}: no example"
        _validator(spec, {"$ref": f"#/components/schemas/{schema_name}"}).validate(example)
        examples[method] = example
    # Another test (Schemathesis tries the examples too) may have left the item behind.
    page = assert_json(api.get("/api/items", params={"limit": 100}), 200)
    for item in page["items"]:
        if item["name"] == examples["post"]["name"]:
            assert api.delete(f"/api/items/{item['id']}").status_code == 204
    created = assert_json(api.post("/api/items", json=examples["post"]), 201)
    for key, value in examples["post"].items():
        assert created[key] == value, created
    url = f"/api/items/{created['id']}"
    assert_json(api.put(url, json=examples["put"]), 200)
    patched = assert_json(api.patch(url, json=examples["patch"]), 200)
    for key, value in examples["patch"].items():
        assert patched[key] == value, patched
    assert api.delete(url).status_code == 204
