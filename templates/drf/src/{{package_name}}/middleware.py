"""Cross-cutting request handling: request id, nosniff, problem+json errors, body limit, log."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import IO
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from django.http import HttpRequest, HttpResponseBase

from .errors import problem_response
from .logs import REQUEST_ID_HEADER, log_request, request_id
from .negotiation import is_json

MAX_BODY_BYTES = 1024 * 1024
# Read and drop at most this much of an oversized body before answering 413, so that the
# client, still sending, reads the answer instead of a connection reset.
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024
_CHUNK = 64 * 1024

Handler = Callable[[HttpRequest], HttpResponseBase]


class RequestMiddleware:
    """Outermost middleware: one access-log line per request, with its request id.

    Also turns any error page that is not JSON (Django's debug pages, `HttpResponseNotAllowed`,
    the CSRF failure page) into problem+json, so no path ever answers with an HTML error.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        response = self.get_response(request)
        if response.status_code >= 400 and not is_json(response.get("Content-Type")):
            allow = response.get("Allow")
            response = problem_response(
                response.status_code, headers={"Allow": allow} if allow else None
            )
        response[REQUEST_ID_HEADER] = rid
        response["X-Content-Type-Options"] = "nosniff"
        duration_ms = (time.perf_counter() - started) * 1000
        log_request(request.method or "", request.path, response.status_code, duration_ms, rid)
        return response


class BodySizeLimitMiddleware:
    """413 for a request whose Content-Length is over 1 MiB, before anything reads the body."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem_response(400, "The Content-Length header is not a number.")
        if length > MAX_BODY_BYTES:
            _drain(request, min(length, DRAIN_LIMIT_BYTES))
            return problem_response(413)
        return self.get_response(request)


class ChunkedBodyLength:
    """WSGI wrapper: gives a chunked request body the Content-Length Django needs.

    Django reads a body only up to its Content-Length (it sees none in a chunked request);
    this reads up to 1 MiB + 1 byte, so an oversized chunked body still gets its 413.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            stream: IO[bytes] = environ["wsgi.input"]
            body = _read(stream, MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                _read(stream, DRAIN_LIMIT_BYTES, keep=False)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _read(stream: IO[bytes], limit: int, keep: bool = True) -> bytes:
    parts: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = stream.read(min(_CHUNK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
        if keep:
            parts.append(chunk)
    return b"".join(parts)


def _drain(request: HttpRequest, length: int) -> None:
    remaining = length
    while remaining > 0:
        chunk = request.read(min(_CHUNK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
