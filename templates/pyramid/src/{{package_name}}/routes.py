"""Every URL of the application; the views that answer them are in `views/`."""

from __future__ import annotations

from typing import Any

from openapi_ui_bundles.swagger_ui import static_path
from pyramid.config import Configurator
from pyramid.request import Request


def includeme(config: Configurator) -> None:
    """The API, the health checks, the OpenAPI document, Swagger UI (served locally) and /."""
    config.add_route_predicate("digits", DigitsPredicate)
    config.add_route("health", "/health")
    config.add_route("ready", "/ready")
    config.add_route("items", "/api/items")
    config.add_route("item", "/api/items/{item_id}", digits="item_id")
    config.add_route("openapi", "/openapi.json")
    config.add_route("docs", "/docs")
    config.add_static_view(name="docs/static", path=str(static_path), cache_max_age=3600)
    config.add_route("home", "/")


class DigitsPredicate:
    """Route predicate `digits="item_id"`: that part of the path is ASCII digits, or no match.

    `int()` would also take other scripts' digits (U+0661), and a regex in the route
    pattern would keep pyramid_openapi3 from finding the OpenAPI path.
    """

    def __init__(self, name: str, config: Configurator) -> None:
        self.name = name

    def text(self) -> str:
        return f"digits = {self.name}"

    phash = text

    def __call__(self, info: dict[str, Any], request: Request) -> bool:
        value = str(info["match"].get(self.name, ""))
        return value.isascii() and value.isdigit()
