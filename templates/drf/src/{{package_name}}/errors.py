"""Problem+json for every error: DRF's exception handler and Django's error views."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from .problems import PROBLEM_JSON, problem, validation_problem

logger = logging.getLogger(__name__)

DETAILS = {
    400: "The request is malformed.",
    403: "Access to this resource is forbidden.",
    404: "The requested resource was not found.",
    405: "The method is not allowed on this path.",
    413: "The request body is larger than 1 MiB.",
    415: "The request body must be JSON (Content-Type: application/json).",
    500: "The server could not complete the request.",
    503: "The database is unreachable.",
}


class Conflict(exceptions.APIException):
    """The request conflicts with an existing resource (a duplicate `name`)."""

    status_code = 409
    default_detail = "An item with this name already exists."
    default_code = "conflict"


class ContentTooLarge(exceptions.APIException):
    """The request body is over the limit."""

    status_code = 413
    default_detail = DETAILS[413]
    default_code = "content_too_large"


def problem_body(status: int, detail: str | None = None) -> dict[str, Any]:
    """The problem document for `status`, with the usual sentence when none is given."""
    return problem(status, detail or DETAILS.get(status, "The request failed."))


def problem_response(
    status: int, detail: str | None = None, headers: dict[str, str] | None = None
) -> JsonResponse:
    """A plain Django problem+json response, for code outside DRF views."""
    response = JsonResponse(problem_body(status, detail), status=status, content_type=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def field_errors(detail: Any) -> list[dict[str, str]]:
    """A DRF `ValidationError.detail` as the contract's `[{field, message}]`, one per field."""
    if not isinstance(detail, dict):
        return [{"field": "body", "message": _first(detail)}]
    return [
        {"field": str(field), "message": _first(messages)} for field, messages in detail.items()
    ]


def _first(messages: Any) -> str:
    while isinstance(messages, list | tuple) and messages:
        messages = messages[0]
    if isinstance(messages, dict) and messages:
        return _first(next(iter(messages.values())))
    return str(messages)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every API error as problem+json; None lets Django log a 500."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(DETAILS[404])
    elif isinstance(exc, RequestDataTooBig):
        exc = ContentTooLarge()
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return Response(problem_body(503), status=503, content_type=PROBLEM_JSON)
    if isinstance(exc, exceptions.ValidationError):
        set_rollback()
        body = validation_problem(field_errors(exc.detail))
        return Response(body, status=422, content_type=PROBLEM_JSON)
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        detail = exc.detail if isinstance(exc.detail, str) else None
        return Response(
            problem_body(exc.status_code, detail), status=exc.status_code, content_type=PROBLEM_JSON
        )
    return None


# Django's error views (urls.handler400 ... handler500), used outside DRF views.


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400 for Django's own checks (a bad Host header, a malformed request)."""
    return problem_response(400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403 from Django views."""
    return problem_response(403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for unknown paths."""
    return problem_response(404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: no stack trace, no SQL, no file path in the body (the log has the traceback)."""
    return problem_response(500)
