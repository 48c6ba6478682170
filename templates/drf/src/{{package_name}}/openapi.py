"""OpenAPI pieces drf-spectacular cannot infer: the problem+json errors and closed bodies."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from .items.serializers import NAME_PATTERN
from .problems import PROBLEM_JSON, RESPONSES

# RFC 9457 problem details, with one `errors` entry per invalid field or query parameter.
PROBLEM = inline_serializer(
    "Problem",
    {
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "errors": inline_serializer(
            "FieldError",
            {"field": serializers.CharField(), "message": serializers.CharField()},
            many=True,
            required=False,
        ),
    },
)


def problems(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """`extend_schema(responses=...)` entries for the given error statuses."""
    return {
        (status, PROBLEM_JSON): OpenApiResponse(PROBLEM, description=RESPONSES[status])
        for status in statuses
    }


def close_request_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: request bodies are required and closed.

    The API answers 415 to a write without a JSON body and 422 to an unknown field, and
    the document says so; clients and property-based testers then never send either as
    if it were valid.
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
