"""Liveness and readiness probes."""

from __future__ import annotations

from django.db import DatabaseError, connection
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

_HEALTH = inline_serializer("Health", {"status": serializers.ChoiceField(["ok"])})
_READINESS = inline_serializer(
    "Readiness",
    {
        "status": serializers.ChoiceField(["ok", "unavailable"]),
        "checks": inline_serializer("ReadinessChecks", {"database": serializers.CharField()}),
    },
)


class HealthView(APIView):
    """GET /health: the process answers; touches no database."""

    http_method_names = ("get", "head")

    @extend_schema(operation_id="health", tags=["health"], responses={200: _HEALTH})
    def get(self, request: Request) -> Response:
        """Liveness: the process is up."""
        return Response({"status": "ok"})


class ReadyView(APIView):
    """GET /ready: the database answers a trivial query."""

    http_method_names = ("get", "head")

    @extend_schema(
        operation_id="ready",
        tags=["health"],
        responses={
            200: _READINESS,
            503: OpenApiResponse(_READINESS, description="The database is unreachable."),
        },
    )
    def get(self, request: Request) -> Response:
        """Readiness: the database answers."""
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError as exc:
            # The class name only: the message may hold the URL and its password.
            body = {"status": "unavailable", "checks": {"database": type(exc).__name__}}
            return Response(body, status=503)
        return Response({"status": "ok", "checks": {"database": "ok"}})
