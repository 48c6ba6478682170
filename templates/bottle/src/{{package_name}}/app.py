"""The application factory: ``create_app()`` returns a new ``bottle.Bottle`` each call."""

from __future__ import annotations

import bottle

from . import errors, hooks
from .config import Settings, load_settings
from .db import Database
from .logs import configure_logging
from .migrations_state import MigrationState
from .plugins import DatabasePlugin
from .routes import docs, health, items


def create_app(settings: Settings | None = None) -> bottle.Bottle:
    """Build the WSGI application; ``settings`` replaces the environment (tests do this).

    Nothing connects to the database here: gunicorn (``preload_app``) calls this in its
    master process, before forking the workers.
    """
    settings = load_settings(settings)
    configure_logging(settings.log_level, json_lines=settings.environment == "production")

    app = bottle.Bottle()
    app.config["app.settings"] = settings  # a route reads bottle.request.app.config
    errors.install(app)
    hooks.install(app, settings.cors_origins)
    app.install(
        DatabasePlugin(Database(settings.database_url), MigrationState(settings.database_url))
    )
    for routes in (health, items, docs):
        routes.register(app)
    return app
