"""Every error as an RFC 9457 problem document, whoever raises it.

Exception views for Pyramid's own HTTP exceptions (404, 405, 413, ...), pydantic's
validation errors, duplicate names, an unreachable database and plain bugs: no
request ever gets an HTML error page, in development or in production.
(Request validation errors are answered in `validation.py`.)
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from pyramid.exceptions import PredicateMismatch
from pyramid.httpexceptions import HTTPException, HTTPNotFound
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config

from .db import is_unavailable
from .problems import field_errors
from .repository import DuplicateNameError
from .responses import problem_response, validation_response

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
            return problem_response(
                405,
                f"{request.method} is not allowed here; use {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
    if isinstance(exc, HTTPNotFound):
        detail = exc.detail if request.matched_route is not None and exc.detail else None
        return problem_response(404, detail or f"there is nothing at {request.path}")
    headers = {name: exc.headers[name] for name in KEPT_HEADERS if name in exc.headers}
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else exc.explanation
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
    """A query or body that does not pass its pydantic model (after the OpenAPI checks)."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(str(error))
        self.errors = field_errors(error.errors())


@exception_view_config(InvalidInputError)
def invalid_input(exc: InvalidInputError, request: Request) -> Response:
    """422 with one entry per field (a pydantic error anywhere else is a bug: 500)."""
    return validation_response(exc.errors)


@exception_view_config(DuplicateNameError)
def duplicate_name(exc: DuplicateNameError, request: Request) -> Response:
    """Another item has this name (409)."""
    return problem_response(409, str(exc))


@exception_view_config(Exception)
def unhandled(exc: Exception, request: Request) -> Response:
    """An unreachable database is 503; anything else is a bug: 500, traceback in the log only."""
    if is_unavailable(exc):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return problem_response(503, "the database is unavailable; try again later")
    logger.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return problem_response(500, "an unexpected error occurred")
