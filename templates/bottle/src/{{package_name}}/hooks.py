"""Request hooks: request id, body size limit, CORS, security headers, one log line."""

from __future__ import annotations

import time

import bottle

from .logs import REQUEST_ID_HEADER, log_request, request_id
from .problems import MAX_BODY_BYTES

CORS_METHODS = "GET, POST, PUT, PATCH, DELETE"
EXPOSE_HEADERS = f"Location, {REQUEST_ID_HEADER}"


def install(app: bottle.Bottle, cors_origins: list[str]) -> None:
    """Add the hooks to ``app``; ``cors_origins`` may be empty (no CORS headers)."""
    allowed = frozenset(cors_origins)

    def before_request() -> None:
        environ = bottle.request.environ
        environ["app.started"] = time.perf_counter()
        environ["app.request_id"] = request_id(bottle.request.get_header(REQUEST_ID_HEADER))
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit():
            raise bottle.HTTPError(400, "Invalid Content-Length.")
        if int(length) > MAX_BODY_BYTES:
            raise bottle.HTTPError(413)
        origin = bottle.request.get_header("Origin")
        if (
            origin in allowed
            and bottle.request.method == "OPTIONS"
            and bottle.request.get_header("Access-Control-Request-Method")
        ):
            raise bottle.HTTPResponse(
                status=204,
                Access_Control_Allow_Methods=CORS_METHODS,
                Access_Control_Allow_Headers=bottle.request.get_header(
                    "Access-Control-Request-Headers", "Content-Type"
                ),
                Access_Control_Max_Age="600",
            )

    def after_request() -> None:
        stamp_headers()
        if allowed:
            # The answer depends on Origin whenever CORS is on: caches must know.
            bottle.response.add_header("Vary", "Origin")
        origin = bottle.request.get_header("Origin")
        if origin in allowed:
            bottle.response.set_header("Access-Control-Allow-Origin", origin)
            bottle.response.set_header("Access-Control-Expose-Headers", EXPOSE_HEADERS)
        environ = bottle.request.environ
        log_request(
            bottle.request.method,
            bottle.request.path,
            bottle.response.status_code,
            (time.perf_counter() - environ["app.started"]) * 1000,
            environ["app.request_id"],
        )

    app.add_hook("before_request", before_request)
    app.add_hook("after_request", after_request)


def stamp_headers() -> None:
    """Set the headers every response carries (also called by the error handler)."""
    rid = bottle.request.environ.get("app.request_id")
    if rid is not None:
        bottle.response.set_header(REQUEST_ID_HEADER, rid)
    bottle.response.set_header("X-Content-Type-Options", "nosniff")
