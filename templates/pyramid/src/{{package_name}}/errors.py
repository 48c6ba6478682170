"""Every error as an RFC 9457 problem document, whoever raises it.

Exception views for Pyramid's own HTTP exceptions (404, 405, 413, ...), pydantic's
validation errors, duplicate names, an unreachable database and plain bugs: no
request ever gets an HTML error page, in development or in production.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from pyramid.exceptions import PredicateMismatch
from pyramid.httpexceptions import HTTPException
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config

from .faults import error_problem
from .problems import METHOD_NOT_ALLOWED, field_errors
from .responses import problem_document_response, problem_response, validation_response

logger = logging.getLogger(__name__)
# Headers of an HTTP exception that still mean something in a problem response.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


@exception_view_config(HTTPException)
def http_exception(exc: HTTPException, request: Request) -> Response:
    """Pyramid's HTTP exceptions; a known path asked with another method is 405, not 404."""
    if exc.code < 400:
        return exc
    if isinstance(exc, PredicateMismatch) and request.matched_route is not None:
        allowed = allowed_methods(request)
        if allowed and request.method not in allowed:
            return problem_response(405, METHOD_NOT_ALLOWED, headers={"Allow": ", ".join(allowed)})
    headers = {name: exc.headers[name] for name in KEPT_HEADERS if name in exc.headers}
    # A 400 says why (the views give the reason), and so does a 503 for pending migrations;
    # every other status has its usual detail.
    detail = exc.detail if exc.code in (400, 503) and isinstance(exc.detail, str) else None
    return problem_response(exc.code, detail, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """The methods the views of the matched route accept, from Pyramid's introspector."""
    introspector = request.registry.introspector
    route = introspector.get("routes", request.matched_route.name)
    methods: set[str] = set()
    for related in introspector.related(route) if route is not None else ():
        if related.category_name == "views":
            accepted = related["request_methods"] or ()
            methods.update([accepted] if isinstance(accepted, str) else accepted)
    if "GET" in methods:
        methods.add("HEAD")  # answered by the GET views (tweens.py)
    return sorted(methods)


class InvalidInputError(Exception):
    """A query or body that does not pass its pydantic model."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(str(error))
        self.errors = field_errors(error.errors())


@exception_view_config(InvalidInputError)
def invalid_input(exc: InvalidInputError, request: Request) -> Response:
    """422 with one entry per field (a pydantic error anywhere else is a bug: 500)."""
    return validation_response(exc.errors)


@exception_view_config(Exception)
def unhandled(exc: Exception, request: Request) -> Response:
    """A duplicate name is 409, an unreachable database 503; anything else is a bug: 500,
    traceback in the log only."""
    body = error_problem(exc)
    if body["status"] == 500:
        logger.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return problem_document_response(body)
