"""The bare Pyramid app: one route, one view with the JSON renderer (`gunicorn pyramid_hello:app`)."""

from pyramid.config import Configurator


def health(request: object) -> dict[str, str]:
    return {"status": "ok"}


with Configurator() as config:
    config.add_route("health", "/health")
    config.add_view(health, route_name="health", renderer="json", request_method="GET")
    app = config.make_wsgi_app()
