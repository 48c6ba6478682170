"""The Django project: settings, URLs, the WSGI/ASGI applications and the items app."""
