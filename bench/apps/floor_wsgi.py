"""The framework-free floor for WSGI servers: a raw WSGI callable (`gunicorn floor_wsgi:app`).

It answers every request with the `/health` body.
"""

BODY = b'{"status":"ok"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", HEADERS)
    return [BODY]
