"""OpenAPI pieces drf-spectacular cannot infer: the problem+json errors, closed bodies, and
the names, texts and examples the document shares with every client generated from it."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from .items.serializers import NAME_PATTERN
from .problems import (
    ITEM_EXAMPLE,
    ITEM_PATCH_EXAMPLE,
    PROBLEM_JSON,
    RESPONSES,
    problem_examples,
)


class FieldErrorSerializer(serializers.Serializer[Any]):
    """One invalid field or query parameter."""

    field = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer[Any]):
    """RFC 9457 problem details."""

    def get_fields(self) -> dict[str, Any]:
        # Not class attributes: `errors` is also the name of a property of every serializer.
        return {
            "type": serializers.CharField(),
            "title": serializers.CharField(),
            "status": serializers.IntegerField(),
            "detail": serializers.CharField(),
            "errors": FieldErrorSerializer(many=True, required=False),
        }


class HealthSerializer(serializers.Serializer[Any]):
    """The process is up."""

    status = serializers.CharField()


class ReadinessSerializer(serializers.Serializer[Any]):
    """Whether the service can serve requests, with the state of each dependency."""

    status = serializers.CharField()
    checks = serializers.DictField(child=serializers.CharField())


def problems(*statuses: int) -> dict[tuple[int | str, str], OpenApiResponse]:
    """`extend_schema(responses=...)` entries for the given error statuses and `default`."""
    return {
        ("default" if status == 500 else status, PROBLEM_JSON): OpenApiResponse(
            ProblemSerializer, description=RESPONSES[status]
        )
        for status in (*statuses, 500)
    }


# One serializer validates every item body; the document names each body as every client
# generated from it calls it, with the same description.
REQUEST_BODIES = {
    "create_item": ("ItemCreate", "A new item: `name` and `quantity` are required.", ITEM_EXAMPLE),
    "replace_item": (
        "ItemReplace",
        "A full replacement (PUT): the same fields as a new item.",
        ITEM_EXAMPLE,
    ),
    "update_item": (
        "ItemPatch",
        "A partial update (PATCH): any subset of the writable fields.",
        ITEM_PATCH_EXAMPLE,
    ),
}
RESPONSE_BODIES = {
    "Item": ("ItemOut", "An item as stored."),
    "PaginatedItemList": ("ItemPage", "One page of items, in `id` order."),
}
REF = "#/components/schemas/"


def close_request_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: request bodies are required and closed.

    The API answers 415 to a write without a JSON body and 422 to an unknown field, and
    the document says so; clients and property-based testers then never send either as
    if it were valid. Then the item schemas get the names every client uses.
    """
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
        for prop in schema.get("properties", {}).values():
            _drop_redundant_blank_option(prop)
            if prop.get("pattern") == NAME_PATTERN:
                # The pattern counts the name once stripped; drf-spectacular adds the
                # field's min/max_length, which would count the raw string.
                prop.pop("minLength", None)
                prop.pop("maxLength", None)
    _name_item_schemas(result)
    return result


def _drop_redundant_blank_option(schema: dict[str, Any]) -> None:
    """Undo drf-spectacular's `oneOf: [string, {maxLength: 0}]` for blank-able strings.

    When the string schema already admits "" (as `description`'s does), "" would match both
    branches, and `oneOf` then rejects the very value it meant to allow.
    """
    options = schema.get("oneOf")
    if not (isinstance(options, list) and len(options) == 2):
        return
    inner, blank = options
    if blank != {"type": "string", "maxLength": 0} or inner.get("minLength", 0) > 0:
        return
    pattern = inner.get("pattern")
    if pattern is None or re.search(pattern, ""):
        del schema["oneOf"]
        schema.update(inner)


def _name_item_schemas(result: dict[str, Any]) -> None:
    """Give the item bodies their names and descriptions, and every example.

    drf-spectacular names a serializer's request body after it (`ItemRequest`,
    `PatchedItemRequest`), one component for POST and PUT; the document names one per
    operation, as the pydantic models of the same API do.
    """
    schemas = result["components"]["schemas"]
    examples = problem_examples()
    for path in result["paths"].values():
        for operation in path.values():
            # drf-spectacular lists `{}` (anonymous) for AllowAny: the API has no authentication.
            operation.pop("security", None)
            body = operation.get("requestBody")
            if body is not None:
                name, description, example = REQUEST_BODIES[operation["operationId"]]
                media = body["content"]["application/json"]
                old = media["schema"]["$ref"].removeprefix(REF)
                schemas[name] = {**schemas[old], "description": description}
                media["schema"] = {"$ref": REF + name}
                media["example"] = example
            for status, response in operation["responses"].items():
                problem = response.get("content", {}).get(PROBLEM_JSON)
                if problem is not None:
                    problem["example"] = examples[500 if status == "default" else int(status)]
    for old in ("ItemRequest", "PatchedItemRequest"):
        schemas.pop(old, None)
    for old, (name, description) in RESPONSE_BODIES.items():
        schemas[name] = {**schemas.pop(old), "description": description}
    item = schemas["ItemOut"]
    item["required"] = list(item["properties"])  # `description` is always sent, maybe null
    _rename_refs(result, {REF + old: REF + name for old, (name, _) in RESPONSE_BODIES.items()})
    result["components"]["schemas"] = dict(sorted(schemas.items()))


def _rename_refs(node: Any, names: dict[str, str]) -> None:
    if isinstance(node, dict):
        if node.get("$ref") in names:
            node["$ref"] = names[node["$ref"]]
        for child in node.values():
            _rename_refs(child, names)
    elif isinstance(node, list):
        for child in node:
            _rename_refs(child, names)
