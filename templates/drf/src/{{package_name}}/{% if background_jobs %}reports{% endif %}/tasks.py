"""The job that builds a report, run by the worker (`make worker`).

It is acknowledged only once it has run (late acknowledgement, `settings.py`): a worker
that dies in the middle of one leaves it in Redis, and another worker runs it again. So
the job stores its outcome once, whatever the number of runs.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError

from ..items.models import Item
from ..worker import celery_app
from .models import DONE, FAILED, PENDING, Report

# A job that fails is tried again this many times (waiting 1 s, 2 s, 4 s...), then its
# report is marked failed.
MAX_RETRIES = 3


class QueueUnavailableError(Exception):
    """Redis cannot be reached: the job was not queued."""


def queue_report(report_id: int) -> None:
    """Queue the job that builds report `report_id`; `QueueUnavailableError` if Redis is down."""
    try:
        # A connection of its own: never one that a Redis restart left broken in a pool.
        with celery_app.connection_for_write() as connection:
            producer = connection.Producer()
            build_report.apply_async((report_id,), producer=producer, retry=False)
    except OperationalError as exc:
        raise QueueUnavailableError(str(exc)) from exc


class ReportTask(Task[Any, Any]):
    """Marks its report failed once the last retry has failed too."""

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        Report.objects.filter(pk=int(args[0]), status=PENDING).update(
            status=FAILED, finished_at=timezone.now()
        )


@celery_app.task(
    base=ReportTask, autoretry_for=(Exception,), max_retries=MAX_RETRIES, retry_backoff=True
)
def build_report(report_id: int) -> None:
    """Count the items and sum their quantities into report `report_id`, if still pending."""
    with transaction.atomic():
        totals = Item.objects.aggregate(
            item_count=Count("id"), total_quantity=Coalesce(Sum("quantity"), 0)
        )
        updated = Report.objects.filter(pk=report_id, status=PENDING).update(
            status=DONE, finished_at=timezone.now(), **totals
        )
    if not updated and not Report.objects.filter(pk=report_id).exists():
        # Its request has not committed it yet: fail, to be tried again.
        raise LookupError(f"report {report_id} does not exist (yet)")
