"""Every error as RFC 9457 problem details (`application/problem+json`), never HTML."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, Response, current_app, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .faults import error_problem
from .problems import PROBLEM_JSON, field_errors, problem, validation_problem

log = logging.getLogger(__name__)


def problem_response(
    status: int,
    detail: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
) -> Response:
    """A problem+json response for `status` (the usual `detail` when none is given)."""
    return _problem_json(problem(status, detail, errors))


def _problem_json(body: dict[str, Any]) -> Response:
    return current_app.response_class(
        json.dumps(body), status=body["status"], mimetype=PROBLEM_JSON
    )


def validation_failed(error: ValidationError) -> Response:
    """flask-openapi3's `validation_error_callback`: a 422 naming every bad field."""
    return _problem_json(validation_problem(field_errors(error.errors())))


def init_app(app: Flask) -> None:
    """Register the handlers that turn every exception into a problem response."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    # Werkzeug's default description is a class attribute (long and HTML-minded); one
    # given by our code is ours.
    response = problem_response(status, vars(error).get("description"))
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _unhandled(error: Exception) -> Response:
    body = error_problem(error)
    if body["status"] == 500:
        # The traceback goes to the log, never to the client.
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
    return _problem_json(body)
