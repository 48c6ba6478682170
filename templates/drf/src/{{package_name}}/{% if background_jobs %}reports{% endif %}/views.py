"""The reports API: POST /api/reports queues a job, GET /api/reports/{report_id} shows it."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..items.models import MAX_ID
from ..migrations_state import migrations
from ..openapi import problems
from ..problems import (
    OPERATIONS,
    QUEUE_UNAVAILABLE,
    REPORT,
    REPORT_ACCEPTED,
    REPORT_ID,
    REPORT_LOCATION,
)
from .models import PENDING, Report
from .serializers import ReportAcceptedSerializer, ReportSerializer
from .tasks import QueueUnavailableError, queue_report

_REPORT_ID = OpenApiParameter(
    "report_id",
    {"type": "integer", "minimum": 1, "maximum": MAX_ID, "description": REPORT_ID},
    OpenApiParameter.PATH,
    description=REPORT_ID,
)
_LOCATION = OpenApiParameter(
    "Location",
    str,
    OpenApiParameter.HEADER,
    description=REPORT_LOCATION,
    response=[202],
)


class QueueUnavailable(exceptions.APIException):
    """Redis cannot be reached: 503."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = QUEUE_UNAVAILABLE


class _ReportsView(APIView):
    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        """503 for every request until `make migrate` has brought the schema up to date."""
        migrations.require_current()
        super().initial(request, *args, **kwargs)


class ReportListView(_ReportsView):
    """POST /api/reports."""

    http_method_names = ("post",)

    @extend_schema(
        **OPERATIONS["create_report"],
        tags=["reports"],
        request=None,
        parameters=[_LOCATION],
        responses={
            202: OpenApiResponse(ReportAcceptedSerializer, description=REPORT_ACCEPTED),
            **problems(503),
        },
    )
    def post(self, request: Request) -> Response:
        """Queue the job that builds a report: 202 with its Location, to poll.

        The report and its job are one unit: if Redis is down, the transaction is rolled
        back and no report is left waiting for a job that does not exist.
        """
        with transaction.atomic():
            report = Report.objects.create(status=PENDING)
            try:
                queue_report(report.pk)
            except QueueUnavailableError:
                raise QueueUnavailable from None
        data = ReportAcceptedSerializer(report).data
        headers = {"Location": f"/api/reports/{report.pk}"}
        return Response(data, status=status.HTTP_202_ACCEPTED, headers=headers)


class ReportDetailView(_ReportsView):
    """GET /api/reports/{report_id}."""

    http_method_names = ("get", "head")

    @extend_schema(
        **OPERATIONS["get_report"],
        tags=["reports"],
        parameters=[_REPORT_ID],
        responses={
            200: OpenApiResponse(ReportSerializer, description=REPORT),
            **problems(404, 503),
        },
    )
    def get(self, request: Request, report_id: str) -> Response:
        """A report, and its result once its job has run."""
        pk = int(report_id) if len(report_id) <= len(str(MAX_ID)) else 0
        report = Report.objects.filter(pk=pk).first() if 1 <= pk <= MAX_ID else None
        if report is None:
            raise exceptions.NotFound
        return Response(ReportSerializer(report).data)
