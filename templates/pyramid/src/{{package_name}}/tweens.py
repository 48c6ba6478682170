"""Tweens: what happens around every request, whichever view (or error view) answers it.

`request_tween` is the outermost: request id, security header, CORS and the access log.
`body_tween` sits just under Pyramid's exception-view tween, so that what it raises
(413) is rendered by `errors.py` like any other error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes, urlencode

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPRequestEntityTooLarge
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import EXCVIEW, INGRESS

from .logs import REQUEST_ID_HEADER, log_request, request_id
from .problems import MAX_BODY_BYTES
from .responses import ApiResponse

CORS_METHODS = "GET, POST, PUT, PATCH, DELETE"
CORS_HEADERS = "Content-Type, X-Request-ID"

Handler = Callable[[Request], Response]


def includeme(config: Configurator) -> None:
    """Put the request tween outside everything (pyramid_tm included) and the body tween inside."""
    config.add_tween(f"{__name__}.request_tween_factory", under=INGRESS)
    config.add_tween(f"{__name__}.body_tween_factory", under=EXCVIEW)


def request_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """Tag, secure and log every response; answer CORS preflight requests."""
    origins = frozenset(registry["app_settings"].cors_origins)

    def request_tween(request: Request) -> Response:
        started = time.perf_counter()
        _decodable_url(request.environ)
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = rid
        origin = request.headers.get("Origin")
        allowed = origin is not None and (origin in origins or "*" in origins)
        method = request.method
        if allowed and _is_preflight(request):
            response = _preflight(request)
        else:
            # HEAD is answered by the GET view (so validated against the GET operation of
            # the OpenAPI document); WebOb drops the body because the WSGI method is HEAD.
            request.method = "GET" if method == "HEAD" else method
            try:
                response = handler(request)
            except Exception:
                # Nothing below should raise; if something does, errors.py still answers.
                response = request.invoke_exception_view(reraise=True)
            finally:
                request.method = method
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = f"{REQUEST_ID_HEADER}, Location"
            response.vary = (*(response.vary or ()), "Origin")
        response.headers[REQUEST_ID_HEADER] = rid
        response.headers["X-Content-Type-Options"] = "nosniff"
        duration_ms = (time.perf_counter() - started) * 1000
        log_request(method, request.path, response.status_code, duration_ms, rid)
        return response

    return request_tween


def _decodable_url(environ: MutableMapping[str, Any]) -> None:
    """Make the path and query UTF-8: bytes that are not become U+FFFD.

    WebOb raises UnicodeDecodeError on every read of such a path or query (a 500); with
    them replaced, a path like `/api/items/%ff` matches no route (404) and `?limit=%ff`
    is not an integer (422).
    """
    path = environ.get("PATH_INFO", "").encode("latin-1")  # PEP 3333: bytes as latin-1
    if not _is_utf8(path):
        environ["PATH_INFO"] = path.decode("utf-8", "replace").encode("utf-8").decode("latin-1")
    query = environ.get("QUERY_STRING", "").encode("latin-1")
    if not _is_utf8(unquote_to_bytes(query)):
        pairs = []
        for part in re.split(rb"[&;]", query.replace(b"+", b" ")):  # as WebOb splits it
            name, _, value = part.partition(b"=")
            if part:
                pairs.append((_replaced(name), _replaced(value)))
        environ["QUERY_STRING"] = urlencode(pairs)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _replaced(escaped: bytes) -> str:
    return unquote_to_bytes(escaped).decode("utf-8", "replace")


def _is_preflight(request: Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def _preflight(request: Request) -> Response:
    response = ApiResponse(status=204)
    del response.content_type
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    response.headers["Access-Control-Allow-Headers"] = request.headers.get(
        "Access-Control-Request-Headers", CORS_HEADERS
    )
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def body_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """Refuse bodies over 1 MiB (413) before anything reads them."""

    def body_tween(request: Request) -> Response:
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            raise HTTPRequestEntityTooLarge
        if length is None and request.environ.get("wsgi.input_terminated"):
            # A chunked body has no Content-Length: read at most one byte past the limit.
            body = request.body_file_raw.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                raise HTTPRequestEntityTooLarge
            request.body = body
        # At most 1 MiB, so keep it in memory: over 10 KiB WebOb would copy it to a
        # temporary file that nothing closes (a ResourceWarning when it is collected).
        request.request_body_tempfile_limit = MAX_BODY_BYTES
        return handler(request)

    return body_tween
