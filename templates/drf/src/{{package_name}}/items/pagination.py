"""`limit` / `offset` pagination in the contract's envelope."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..problems import LIMIT, OFFSET, integer_between
from .models import MAX_ID

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Ids stop at MAX_ID and are never handed out twice, so no item lies beyond this offset.
MAX_OFFSET = MAX_ID
# Text digits with an optional minus: not "2.0", "+2", " 2" or "2_000".
_INTEGER = re.compile(r"-?[0-9]{1,20}")


def _parameter(request: Request, name: str, default: int, low: int, high: int) -> int | str:
    """The parameter's value, or the message of why it is invalid."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if _INTEGER.fullmatch(raw) and low <= int(raw) <= high:
        return int(raw)
    return integer_between(low, high)


class ItemPagination(BasePagination):
    """A page of `limit` items (1..100, default 20) from `offset` (default 0)."""

    limit = DEFAULT_LIMIT
    offset = 0
    total = 0

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        limit = _parameter(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _parameter(request, "offset", 0, 0, MAX_OFFSET)
        errors = {
            name: [value]
            for name, value in (("limit", limit), ("offset", offset))
            if isinstance(value, str)
        }
        if errors:
            raise ValidationError(errors)
        self.limit, self.offset = int(limit), int(offset)
        # One row past the page: unless it comes back, this is the last page, and the total
        # follows from it without a COUNT query.
        page = list(queryset[self.offset : self.offset + self.limit + 1])
        if len(page) <= self.limit and (page or not self.offset):
            self.total = self.offset + len(page)
        else:
            self.total = queryset.count()
        return page[: self.limit]

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {"items": data, "total": self.total, "limit": self.limit, "offset": self.offset}
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["items", "total", "limit", "offset"],
            "properties": {
                "items": schema,
                "total": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
            },
        }

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": LIMIT,
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                    "description": LIMIT,
                },
            },
            {
                "name": "offset",
                "in": "query",
                "required": False,
                "description": OFFSET,
                "schema": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_OFFSET,
                    "default": 0,
                    "description": OFFSET,
                },
            },
        ]
