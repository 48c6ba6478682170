"""Liveness and readiness probes."""

from __future__ import annotations

from django.db import DatabaseError, connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .migrations_state import PENDING, migrations
from .openapi import HealthSerializer, ReadinessSerializer, problems
from .problems import HEALTHY, NOT_READY, OPERATIONS, READY


class HealthView(APIView):
    """GET /health: the process answers; touches no database."""

    http_method_names = ("get", "head")

    @extend_schema(
        **OPERATIONS["health"],
        tags=["health"],
        responses={200: OpenApiResponse(HealthSerializer, description=HEALTHY), **problems()},
    )
    def get(self, request: Request) -> Response:
        """Liveness: the process is up."""
        return Response({"status": "ok"})


class ReadyView(APIView):
    """GET /ready: the database answers a trivial query, and every migration is applied."""

    http_method_names = ("get", "head")

    @extend_schema(
        **OPERATIONS["ready"],
        tags=["health"],
        responses={
            200: OpenApiResponse(ReadinessSerializer, description=READY),
            503: OpenApiResponse(ReadinessSerializer, description=NOT_READY),
            **problems(),
        },
    )
    def get(self, request: Request) -> Response:
        """Readiness: the database answers, and the schema is up to date."""
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            current = migrations.is_current()
        except DatabaseError as exc:
            # The class name only: the message may hold the URL and its password.
            return _unavailable(type(exc).__name__)
        if not current:
            return _unavailable(PENDING)
        return Response({"status": "ok", "checks": {"database": "ok"}})


def _unavailable(reason: str) -> Response:
    return Response({"status": "unavailable", "checks": {"database": reason}}, status=503)
