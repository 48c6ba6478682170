"""Every error as RFC 9457 problem details (`application/problem+json`), never HTML."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

from flask import Flask, Response, current_app, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .db import is_unavailable
from .problems import PROBLEM_JSON, field_errors, problem, validation_problem
from .repository import DuplicateNameError

log = logging.getLogger(__name__)

# One sentence per status, for Werkzeug's own errors (its descriptions are long and HTML-minded).
DETAILS = {
    400: "The request is malformed.",
    404: "There is nothing at this URL.",
    405: "This URL does not support the method.",
    413: "The request body is larger than 1 MiB.",
    415: "The body must be JSON (Content-Type: application/json).",
    500: "The server failed to handle the request.",
    503: "The database is unavailable; try again later.",
}


def problem_response(
    status: int,
    detail: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
) -> Response:
    """A problem+json response for `status`."""
    body = problem(status, detail or DETAILS.get(status, "The request failed."), errors)
    return current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def validation_failed(error: ValidationError) -> Response:
    """flask-openapi3's `validation_error_callback`: a 422 naming every bad field."""
    body = validation_problem(field_errors(error.errors()))
    return current_app.response_class(json.dumps(body), status=422, mimetype=PROBLEM_JSON)


def init_app(app: Flask) -> None:
    """Register the handlers that turn every exception into a problem response."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DuplicateNameError, _duplicate_name)
    app.register_error_handler(Exception, _unhandled)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    # Werkzeug's default description is a class attribute; one given by our code is ours.
    own = vars(error).get("description")
    response = problem_response(status, own or DETAILS.get(status, error.description))
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _duplicate_name(error: DuplicateNameError) -> Response:
    return problem_response(409, f"An item named {error.name!r} already exists.")


def _unhandled(error: Exception) -> Response:
    if is_unavailable(error):
        log.warning("database unavailable: %s", type(error).__name__)
        return problem_response(503)
    # The traceback goes to the log, never to the client.
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
    return problem_response(500)
