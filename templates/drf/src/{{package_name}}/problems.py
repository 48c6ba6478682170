"""RFC 9457 problem details: the body of every error response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PROBLEM_JSON = "application/problem+json"

# RFC 9110 reason phrases (Python's http.HTTPStatus has older ones for 413 and 422).
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int, detail: str | None = None, errors: Sequence[Mapping[str, str]] | None = None
) -> dict[str, Any]:
    """The problem document for `status`, with an optional `errors` list."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = [dict(error) for error in errors]
    return body


def validation_problem(errors: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """A 422 problem listing one entry per invalid field."""
    count = len(errors)
    detail = "1 field is invalid" if count == 1 else f"{count} fields are invalid"
    return problem(422, detail, errors)
