"""The response class of the application, and problem documents as responses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from .problems import PROBLEM_JSON, problem, validation_problem


class ApiResponse(Response):  # type: ignore[misc]  # WebOb is untyped
    """A WebOb response that sends `Location` as the view set it.

    WebOb turns a relative `Location` into an absolute URL built from the request's
    Host header; the API answers `Location: /api/items/1`, as RFC 9110 allows.
    """

    def _abs_headerlist(self, environ: Mapping[str, Any]) -> list[tuple[str, str]]:
        return list(self.headerlist)


def json_response(document: Any) -> ApiResponse:
    """A 200 response with `document` written as the `json` renderer writes it."""
    return ApiResponse(body=json.dumps(document).encode(), content_type="application/json")


def problem_response(
    status: int, detail: str | None = None, headers: Mapping[str, str] | None = None
) -> ApiResponse:
    """An `application/problem+json` response for `status` (the usual `detail` by default)."""
    return problem_document_response(problem(status, detail), headers)


def validation_response(errors: Sequence[Mapping[str, str]]) -> ApiResponse:
    """A 422 problem with one `errors` entry per invalid field or query parameter."""
    return problem_document_response(validation_problem(errors))


def problem_document_response(
    body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> ApiResponse:
    """A problem document (`problems.problem`) as the response."""
    response = ApiResponse(
        body=json.dumps(body).encode(), status=body["status"], content_type=PROBLEM_JSON
    )
    response.headers.update(headers or {})
    return response


def includeme(config: Configurator) -> None:
    """Make `ApiResponse` the class of `request.response` and of every rendered view."""

    def response_factory(request: Request) -> ApiResponse:
        return ApiResponse()

    config.set_response_factory(response_factory)
