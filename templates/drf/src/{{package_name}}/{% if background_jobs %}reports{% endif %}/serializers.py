"""A report as the API shows it."""

from __future__ import annotations

from rest_framework import serializers

from .models import DONE, FAILED, PENDING, Report


class ReportResultSerializer(serializers.Serializer[dict[str, int]]):
    """What a report's job found."""

    item_count = serializers.IntegerField()
    total_quantity = serializers.IntegerField()


class ReportSerializer(serializers.ModelSerializer[Report]):
    """A report, with its result once its job has run."""

    status = serializers.ChoiceField(choices=[PENDING, DONE, FAILED], read_only=True)
    result = ReportResultSerializer(allow_null=True, read_only=True)

    class Meta:
        model = Report
        fields = ("id", "status", "created_at", "finished_at", "result")
        read_only_fields = fields


class ReportAcceptedSerializer(serializers.ModelSerializer[Report]):
    """A report just asked for: its job is queued."""

    class Meta:
        model = Report
        fields = ("id", "status", "created_at")
        read_only_fields = fields
