"""Cross-cutting request handling: request id, nosniff, problem+json errors, body limit, log."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable
from typing import IO, Any
from weakref import WeakSet
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabaseWrapper
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

from .errors import problem_response
from .logs import REQUEST_ID_HEADER, log_request, request_id
from .problems import MAX_BODY_BYTES, is_json

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
        close_unsound_sqlite_connections()
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


# SQLite opens a file it may not write (a wrong owner, a read-only volume) read-only, and
# while one such connection is open, the process's later connections to the file are
# read-only too (they share its -shm index). A persistent connection (CONN_MAX_AGE) would
# go on refusing writes after the file is fixed: so a SQLite connection that was opened
# read-only, or that failed during the request, is closed at its end (Django's own check
# keeps it: a SQLite connection always passes `is_usable()`).
_opened_read_only: WeakSet[BaseDatabaseWrapper] = WeakSet()


@receiver(connection_created)
def _note_read_only(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if not isinstance(connection, SQLiteDatabaseWrapper) or connection.is_in_memory_db():
        return
    if not os.access(connection.settings_dict["NAME"], os.W_OK):
        _opened_read_only.add(connection)


def close_unsound_sqlite_connections() -> None:
    """Close this thread's SQLite connections that were opened read-only or failed."""
    for connection in connections.all(initialized_only=True):
        if connection.vendor != "sqlite" or connection.in_atomic_block:
            continue  # (tests run each test in a transaction on an in-memory database)
        if connection.errors_occurred or connection in _opened_read_only:
            _opened_read_only.discard(connection)
            connection.close()


class BodySizeLimitMiddleware:
    """413 for a request whose Content-Length is over 1 MiB, before anything reads the body."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem_response(400)
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
