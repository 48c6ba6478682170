"""Every error as RFC 9457 problem+json: Bottle's own 404/405/500 and the app's."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import bottle

from . import hooks
from .faults import error_problem
from .problems import METHOD_NOT_ALLOWED, PROBLEM_JSON, problem, validation_problem

logger = logging.getLogger(__name__)


def problem_response(status: int, detail: str | None = None, **headers: str) -> bottle.HTTPResponse:
    """A problem to return or raise from a route: ``raise problem_response(404)``."""
    return _response(problem(status, detail), headers)


def invalid_response(errors: list[dict[str, str]]) -> bottle.HTTPResponse:
    """The 422 problem listing every invalid field or query parameter."""
    return _response(validation_problem(errors), {})


def _response(body: dict[str, Any], headers: dict[str, str]) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(json.dumps(body), body["status"], headers, Content_Type=PROBLEM_JSON)


def handle_http_error(error: bottle.HTTPError) -> str:
    """Render the HTTPErrors Bottle raises itself (no route, wrong method, 500) as problems."""
    status = error.status_code
    if status == 405:
        # Bottle answers HEAD with the GET route, but leaves it out of Allow.
        methods = [method.strip() for method in error.get_header("Allow", "").split(",")]
        if "GET" in methods and "HEAD" not in methods:
            methods.append("HEAD")
        bottle.response.set_header("Allow", ", ".join(methods))
    if status >= 500 and error.traceback:
        # Only reached when an exception escapes outside a route (a hook or a plugin).
        logger.error("unhandled exception\n%s", error.traceback)
    bottle.response.content_type = PROBLEM_JSON
    hooks.stamp_headers()
    return json.dumps(problem(status, METHOD_NOT_ALLOWED if status == 405 else None))


def catch_unhandled(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Plugin: answer any exception a route lets escape: 409, 503, or a bare 500 (logged)."""

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except bottle.HTTPResponse:
            raise
        except Exception as exc:
            body = error_problem(exc)
            if body["status"] == 500:
                request = bottle.request
                logger.exception("unhandled exception in %s %s", request.method, request.path)
            raise _response(body, {}) from None

    return wrapper


def install(app: bottle.Bottle) -> None:
    """Route every error of ``app`` through the problem+json handlers above."""
    # Bottle looks error pages up in app.error_handler and falls back to this
    # method, which would otherwise render its HTML page: replace it for all codes.
    app.default_error_handler = handle_http_error
    app.install(catch_unhandled)
