"""Problem+json for every error: DRF's exception handler and Django's error views."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from .faults import error_problem, error_status
from .migrations_state import MigrationsPending
from .problems import MIGRATIONS_PENDING, PROBLEM_JSON, problem, validation_problem


def problem_response(
    status: int, detail: str | None = None, headers: dict[str, str] | None = None
) -> JsonResponse:
    """A plain Django problem+json response, for code outside DRF views."""
    response = JsonResponse(problem(status, detail), status=status, content_type=PROBLEM_JSON)
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
    if isinstance(exc, exceptions.ValidationError):
        set_rollback()
        body = validation_problem(field_errors(exc.detail))
    elif isinstance(exc, exceptions.ParseError):
        set_rollback()
        body = problem(400, str(exc.detail))  # why the body cannot be read (negotiation.py)
    elif isinstance(exc, MigrationsPending):
        body = problem(503, MIGRATIONS_PENDING)
    elif isinstance(exc, exceptions.APIException):
        set_rollback()
        body = problem(exc.status_code)
    elif isinstance(exc, Http404):
        body = problem(404)
    elif isinstance(exc, RequestDataTooBig):
        body = problem(413)
    elif error_status(exc) != 500:
        set_rollback()
        body = error_problem(exc)  # a duplicate name, an unavailable database
    else:
        return None
    return Response(body, status=body["status"], content_type=PROBLEM_JSON)


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
