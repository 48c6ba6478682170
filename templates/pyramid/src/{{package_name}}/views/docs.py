"""The OpenAPI document; Swagger UI at /docs is pyramid_openapi3's explorer (see routes.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from jsonschema_path import SchemaPath
from openapi_core import V31ResponseValidator
from pyramid.config import PHASE0_CONFIG, Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config
from pyramid_openapi3.exceptions import ResponseValidationError

from ..openapi import build_openapi
from ..problems import PROBLEM_JSON, parse_json
from ..responses import problem_response

API = "pyramid_openapi3"  # the name pyramid_openapi3 keeps its settings under
logger = logging.getLogger(__name__)


def includeme(config: Configurator) -> None:
    """Add pyramid_openapi3 and give it the document built from the pydantic schemas.

    Request bodies and queries are validated by the pydantic models in the views;
    pyramid_openapi3 serves Swagger UI and, in tests, checks every response of an
    `openapi=True` view against the document. It reads a spec *file*; this project
    builds its document in code, so it is registered here in the shape the library's
    `pyramid_openapi3_spec` directive gives it (pinned to 0.22).
    """
    config.include("pyramid_openapi3")
    document = build_openapi()
    config.registry["openapi_document"] = document
    settings = config.get_settings()
    settings["pyramid_openapi3.enable_request_validation"] = False
    # Tests check every response against the document; a server trusts its tests.
    in_tests = config.registry["app_settings"].environment == "test"
    settings["pyramid_openapi3.enable_response_validation"] = in_tests

    def register() -> None:
        spec = SchemaPath.from_dict(document)
        deserializers: dict[str, Callable[[bytes], Any]] = {
            "application/json": parse_json,
            PROBLEM_JSON: json.loads,
        }
        settings[API] = {
            "filepath": f"{build_openapi.__module__}:build_openapi",
            "spec_route_name": "openapi",
            "spec": spec,
            "response_validator": V31ResponseValidator(
                spec, extra_media_type_deserializers=deserializers
            ),
        }
        settings.setdefault("pyramid_openapi3_apinames", []).append(API)

    config.action((f"{API}_spec",), register, order=PHASE0_CONFIG)


@view_config(route_name="openapi", request_method="GET", renderer="json")
def openapi_document(request: Request) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API."""
    document: dict[str, Any] = request.registry["openapi_document"]
    return document


@exception_view_config(ResponseValidationError)
def response_validation_error(exc: ResponseValidationError, request: Request) -> Response:
    """A response that breaks the document is a bug: log it, answer 500 (tests only)."""
    logger.error("response does not match the OpenAPI document: %s", exc)
    return problem_response(500)
