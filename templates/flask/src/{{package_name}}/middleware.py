"""Per-request plumbing: request id, security header, the access-log line, JSON bodies."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

from .logs import REQUEST_ID_HEADER, log_request, request_id
from .problems import WRITE_METHODS, BodyError, is_json, parse_json, parse_json_object


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that request bodies are read by `problems.parse_json`.

    `request.get_json()` (flask-openapi3's validation calls it) parses with
    `problems.parse_json`; `require_json_object` has already refused what it cannot read.
    Responses keep their keys in the order written (the OpenAPI document's properties in
    declared order, a problem's `type` first).
    """

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s if isinstance(s, bytes) else s.encode())


def init_app(app: Flask) -> None:
    """Register the hooks; call first so that they wrap every other hook and handler."""
    app.json = JSONProvider(app)
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    g.started = time.perf_counter()
    g.request_id = request_id(request.headers.get(REQUEST_ID_HEADER))


def _finish(response: Response) -> Response:
    rid = g.get("request_id") or request_id(request.headers.get(REQUEST_ID_HEADER))
    response.headers[REQUEST_ID_HEADER] = rid
    response.headers["X-Content-Type-Options"] = "nosniff"
    duration_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    log_request(request.method, request.path, response.status_code, duration_ms, rid)
    return response


def require_json_object() -> None:
    """A blueprint's `before_request`: write bodies must be a JSON object (415, 400, 413)."""
    if request.method not in WRITE_METHODS:
        return
    if not is_json(request.content_type):
        raise UnsupportedMediaType()
    # 413 when Content-Length is over MAX_CONTENT_LENGTH; the bytes stay cached for the
    # validation that follows.
    data = request.get_data(cache=True)
    limit = request.max_content_length
    at_limit = limit is not None and len(data) >= limit
    # A streamed (chunked) body is cut at the limit, silently: anything left is too much.
    if at_limit and request.content_length is None and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    try:
        parse_json_object(data)
    except BodyError as exc:
        raise BadRequest(str(exc)) from None
