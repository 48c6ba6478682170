"""The OpenAPI document; Swagger UI at /docs is pyramid_openapi3's explorer (see routes.py)."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config


@view_config(route_name="openapi", request_method="GET", renderer="json")
def openapi_document(request: Request) -> dict[str, Any]:
    """The OpenAPI 3 document that pyramid_openapi3 validates requests against."""
    document: dict[str, Any] = request.registry["openapi_document"]
    return document
