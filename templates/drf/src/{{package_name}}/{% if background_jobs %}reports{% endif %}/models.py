"""The report, stored by Django's ORM; a background job (tasks.py) fills it in."""

from __future__ import annotations

from django.db import models

PENDING = "pending"
DONE = "done"
FAILED = "failed"


class Report(models.Model):
    """A report on the items: `pending` until its job has run, then `done` (or `failed`)."""

    id = models.AutoField(primary_key=True)
    status = models.CharField(max_length=10)  # PENDING, DONE or FAILED
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True)
    item_count = models.IntegerField(null=True)
    total_quantity = models.BigIntegerField(null=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"report {self.pk} ({self.status})"

    @property
    def result(self) -> dict[str, int | None] | None:
        """What the job found, once the report is done."""
        if self.status != DONE:
            return None
        return {"item_count": self.item_count, "total_quantity": self.total_quantity}
