"""The bare Django REST framework app: one `@api_view`, no middleware, no database.

A whole Django project in one module (`gunicorn drf_hello:app`): settings, one URL,
and the WSGI application. Authentication and permissions are off and JSON is the only
renderer, so this is what Django + DRF cost before any project code.
"""

import django
from django.conf import settings
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only-not-secret",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["rest_framework"],
    MIDDLEWARE=[],
    DATABASES={},
    USE_TZ=True,
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": [],
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        "UNAUTHENTICATED_USER": None,
    },
)
django.setup()

from django.core.wsgi import get_wsgi_application
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response


@api_view(["GET"])
def health(request: Request) -> Response:
    return Response({"status": "ok"})


urlpatterns = [path("health", health)]

app = get_wsgi_application()
