"""Request validation by pyramid_openapi3 against `openapi.py`'s document, with contract errors.

Views declared with `openapi=True` have their path, query and body checked by
openapi-core before they run. A failure raises `RequestValidationError`, which
`request_validation_error` answers as the contract's problem: 404 for a bad item
id, 415 for a body that is not JSON, 400 for a body that is not an object, and 422
with one `errors` entry per bad field or query parameter. A JSON body is read once,
by `problems.parse_json_object` (`request.json_object`), before openapi-core sees it:
what it refuses is a 400.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema_path import SchemaPath
from openapi_core import (
    V30RequestUnmarshaller,
    V30ResponseValidator,
    V31RequestUnmarshaller,
    V31ResponseValidator,
)
from openapi_core.casting.schemas.exceptions import CastError
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.validation.request.exceptions import (
    MissingParameterError,
    MissingRequestBodyError,
    ParameterValidationError,
    RequestBodyValidationError,
)
from pyramid.config import PHASE0_CONFIG, Configurator
from pyramid.httpexceptions import HTTPBadRequest
from pyramid.interfaces import IViewDeriverInfo as ViewDeriverInfo
from pyramid.request import Request
from pyramid.view import exception_view_config
from pyramid_openapi3.exceptions import RequestValidationError, ResponseValidationError

from .openapi import build_openapi
from .problems import (
    PROBLEM_JSON,
    READ_ONLY_FIELDS,
    BodyError,
    parse_json,
    parse_json_object,
)
from .responses import ApiResponse, problem_response, validation_response
from .schemas import NAME_MAX, STRIP

logger = logging.getLogger(__name__)
API = "pyramid_openapi3"  # the name pyramid_openapi3 keeps its settings under
View = Callable[[Any, Request], Any]
STRIPPED_FIELDS = ("name",)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
TYPE_NAMES = {"integer": "an integer", "string": "a string", "object": "an object"}


def includeme(config: Configurator) -> None:
    """Add pyramid_openapi3 and give it the document built from the pydantic schemas.

    pyramid_openapi3 reads a spec *file*; this project builds its document in code
    (`openapi.build_openapi()`), so it is registered here in the same place and shape
    as the library's `pyramid_openapi3_spec` directive does it (pinned to 0.22).
    """
    config.include("pyramid_openapi3")
    config.add_request_method(json_object, reify=True)
    config.add_view_deriver(readable_json_body, over="openapi_view")
    document = build_openapi()
    config.registry["openapi_document"] = document
    settings = config.get_settings()
    # Tests check every response against the document; a server trusts its tests.
    in_tests = config.registry["app_settings"].environment == "test"
    settings["pyramid_openapi3.enable_response_validation"] = in_tests

    def register() -> None:
        spec = SchemaPath.from_dict(_counted_after_stripping(document))
        version_31 = str(document["openapi"]).startswith("3.1")
        request_unmarshaller = V31RequestUnmarshaller if version_31 else V30RequestUnmarshaller
        response_validator = V31ResponseValidator if version_31 else V30ResponseValidator
        # openapi-core reads only application/json bodies as JSON unless told; request
        # bodies with `problems.parse_json` (`readable_json_body` has checked they can be).
        deserializers: dict[str, Callable[[bytes], Any]] = {
            "application/json": parse_json,
            PROBLEM_JSON: json.loads,
        }
        settings[API] = {
            "filepath": f"{__name__}:build_openapi",
            "spec_route_name": "openapi",
            "spec": spec,
            "request_validator": request_unmarshaller(
                spec, extra_media_type_deserializers=deserializers
            ),
            "response_validator": response_validator(
                spec, extra_media_type_deserializers=deserializers
            ),
        }
        settings.setdefault("pyramid_openapi3_apinames", []).append(API)

    config.action((f"{API}_spec",), register, order=PHASE0_CONFIG)


def json_object(request: Request) -> dict[str, Any]:
    """`request.json_object`: the JSON body, read by `problems.parse_json_object`.

    Not WebOb's `request.json_body`, which takes NaN, fails on a 5000-digit integer or on
    deep nesting with errors no view expects, and reads the body again on every access.
    """
    return parse_json_object(request.body)


def readable_json_body(view: View, info: ViewDeriverInfo) -> View:
    """Refuse a JSON body `request.json_object` cannot read (400) before openapi-core reads it.

    openapi-core's own errors for such bodies say little (and for a body that is not
    UTF-8, its error message decodes the bytes as UTF-8 and fails).
    """
    if not info.options.get("openapi"):
        return view

    def checked_view(context: Any, request: Request) -> Any:
        if request.method in BODY_METHODS and request.content_type == "application/json":
            try:
                request.json_object  # noqa: B018 - read (and cached) here, or refused
            except BodyError as exc:
                raise HTTPBadRequest(str(exc)) from None
        return view(context, request)

    return checked_view


def _counted_after_stripping(document: dict[str, Any]) -> dict[str, Any]:
    """The document to validate requests with: `name` without a raw `maxLength`.

    The contract counts the characters of `name` after stripping surrounding
    whitespace; the served pattern says so, a `maxLength` would not (none is
    served today: this keeps validation right if one comes back).
    """
    checked = copy.deepcopy(document)
    for schema in checked.get("components", {}).get("schemas", {}).values():
        for name, field in schema.get("properties", {}).items():
            if name in STRIPPED_FIELDS:
                field.pop("maxLength", None)
    return checked


@exception_view_config(RequestValidationError)
def request_validation_error(exc: RequestValidationError, request: Request) -> ApiResponse:
    """The contract's answer to a request that does not match the OpenAPI document."""
    errors = list(exc.errors)
    if any(isinstance(e, ParameterValidationError) and e.location == "path" for e in errors):
        return problem_response(404, f"there is nothing at {request.path}")
    body_errors = [e for e in errors if isinstance(e, RequestBodyValidationError)]
    if body_errors:
        media_type = (request.content_type or "").lower()
        if media_type != "application/json" or any(
            isinstance(e.__cause__, MediaTypeNotFound) for e in body_errors
        ):
            return problem_response(415, "send the request body as application/json")
        if any(_is_not_an_object(e) for e in body_errors):
            return problem_response(400, "the request body must be a JSON object")
    fields: dict[str, str] = {}
    for error in errors:
        for field, message in _field_errors(error):
            fields.setdefault(field, message)
    if not fields:
        return problem_response(400, str(exc))
    return validation_response([{"field": f, "message": m} for f, m in fields.items()])


@exception_view_config(ResponseValidationError)
def response_validation_error(exc: ResponseValidationError, request: Request) -> ApiResponse:
    """A response that breaks the document is a bug: log it, answer 500 (tests only)."""
    logger.error("response does not match the OpenAPI document: %s", exc)
    return problem_response(500, "an unexpected error occurred")


def _is_not_an_object(error: RequestBodyValidationError) -> bool:
    """Missing or unreadable JSON, or JSON whose top level is not an object."""
    if isinstance(error, MissingRequestBodyError) or not _schema_errors(error):
        return True
    return any(not e.path and e.validator == "type" for e in _schema_errors(error))


def _schema_errors(error: BaseException) -> list[SchemaError]:
    return list(getattr(error.__cause__, "schema_errors", None) or ())


def _field_errors(error: BaseException) -> Iterator[tuple[str, str]]:
    """(field, message) pairs for one openapi-core error."""
    if isinstance(error, ParameterValidationError):
        if isinstance(error, MissingParameterError):
            yield error.name, "field required"
        elif isinstance(error.__cause__, CastError):
            yield error.name, "must be an integer"
        else:
            schema_errors = _schema_errors(error)
            message = _message(schema_errors[0]) if schema_errors else "is invalid"
            yield error.name, message
        return
    for schema_error in _schema_errors(error):
        yield from _body_field_errors(schema_error)


def _body_field_errors(error: SchemaError) -> Iterator[tuple[str, str]]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "additionalProperties":
        known = _as_schema(error.schema).get("properties", {})
        for name in instance:
            if name not in known:
                yield name, "read-only field" if name in READ_ONLY_FIELDS else "unknown field"
    elif error.validator == "required":
        for name in _names(error.validator_value):
            if name not in instance:
                yield name, "field required"
    elif error.path:
        yield str(error.path[0]), _message(error)


def _message(error: SchemaError) -> str:
    """A short message for one schema violation of a field or parameter."""
    schema = _as_schema(error.schema)
    value = error.instance
    bounded = schema.get("type") == "integer" and {"minimum", "maximum"} <= schema.keys()
    if error.validator == "type":
        if value is None:
            return "must not be null"
        if bounded:  # one message for every bad value, as the pydantic models give it
            return f"must be an integer between {schema['minimum']} and {schema['maximum']}"
        kind = TYPE_NAMES.get(str(schema.get("type")), str(schema.get("type")))
        return f"must be {kind}{' or null' if schema.get('nullable') else ''}"
    if error.validator in ("minimum", "maximum"):
        return f"must be an integer between {schema.get('minimum')} and {schema.get('maximum')}"
    if error.validator in ("minLength", "pattern") and isinstance(value, str):
        if "\x00" in value:
            return "must not contain NUL characters"
        if not value.strip(STRIP):
            return "must not be blank"
        if len(value.strip(STRIP)) > NAME_MAX:
            return f"must be at most {NAME_MAX} characters"
        return "is not a valid value"
    if error.validator == "maxLength":
        return f"must be at most {schema.get('maxLength')} characters"
    return "is invalid"


def _as_schema(schema: Any) -> dict[str, Any]:
    return schema if isinstance(schema, dict) else {}


def _names(value: Any) -> Iterable[str]:
    return [str(name) for name in value] if isinstance(value, list) else []
