"""The framework-free floor for WSGI servers: a raw WSGI callable (`gunicorn floor_wsgi:app`).

It answers `/api/items` with the starter's list (floor_list.py) and every other request
with the `/health` body.
"""

from floor_list import page

BODY = b'{"status":"ok"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):  # type: ignore[no-untyped-def]
    if environ["PATH_INFO"] == "/api/items":
        body = page(environ.get("QUERY_STRING", ""))
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]
    start_response("200 OK", HEADERS)
    return [BODY]
