"""Every URL of the application; the views that answer them are in `views/`."""

from __future__ import annotations

from openapi_ui_bundles.swagger_ui import static_path
from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """The API, the health checks, the OpenAPI document and Swagger UI (served locally)."""
    config.add_route("health", "/health")
    config.add_route("ready", "/ready")
    config.add_route("items", "/api/items")
    config.add_route("item", "/api/items/{item_id}")
    config.add_route("openapi", "/openapi.json")
    config.add_static_view(name="docs/static", path=str(static_path), cache_max_age=3600)
    config.pyramid_openapi3_add_explorer(route="/docs", template=f"{__package__}:static/docs.html")
