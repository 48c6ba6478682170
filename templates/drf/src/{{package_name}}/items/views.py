"""The items API: one ViewSet for /api/items and /api/items/{item_id}."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from ..migrations_state import migrations
from ..openapi import problems
from ..problems import (
    CREATED,
    DELETED,
    EMPTY,
    ITEM,
    ITEM_ID,
    ITEM_PAGE,
    LOCATION,
    NOT_AN_OBJECT,
    OPERATIONS,
    is_json,
)
from .models import MAX_ID, Item
from .pagination import ItemPagination
from .serializers import ItemSerializer

_ITEM_ID = OpenApiParameter(
    "item_id",
    {"type": "integer", "minimum": 1, "maximum": MAX_ID, "description": ITEM_ID},
    OpenApiParameter.PATH,
    description=ITEM_ID,
)
_LOCATION = OpenApiParameter(
    "Location",
    str,
    OpenApiParameter.HEADER,
    description=LOCATION,
    response=[201],
)
_WRITE_ERRORS = (400, 404, 409, 413, 415, 422, 503)
_ITEM = OpenApiResponse(ItemSerializer, description=ITEM)


@extend_schema(tags=["items"])
@extend_schema_view(
    list=extend_schema(
        **OPERATIONS["list_items"],
        responses={
            200: OpenApiResponse(ItemSerializer(many=True), description=ITEM_PAGE),
            **problems(422, 503),
        },
    ),
    create=extend_schema(
        **OPERATIONS["create_item"],
        parameters=[_LOCATION],
        responses={
            201: OpenApiResponse(ItemSerializer, description=CREATED),
            **problems(400, 409, 413, 415, 422, 503),
        },
    ),
    retrieve=extend_schema(
        **OPERATIONS["get_item"],
        parameters=[_ITEM_ID],
        responses={200: _ITEM, **problems(404, 503)},
    ),
    update=extend_schema(
        **OPERATIONS["replace_item"],
        parameters=[_ITEM_ID],
        responses={200: _ITEM, **problems(*_WRITE_ERRORS)},
    ),
    partial_update=extend_schema(
        **OPERATIONS["update_item"],
        parameters=[_ITEM_ID],
        responses={200: _ITEM, **problems(*_WRITE_ERRORS)},
    ),
    destroy=extend_schema(
        **OPERATIONS["delete_item"],
        parameters=[_ITEM_ID],
        responses={204: OpenApiResponse(description=DELETED), **problems(404, 503)},
    ),
)
class ItemViewSet(viewsets.ModelViewSet[Item]):
    """Create, list, read, replace, update and delete items."""

    queryset = Item.objects.order_by("id")
    serializer_class = ItemSerializer
    pagination_class = ItemPagination
    lookup_url_kwarg = "item_id"
    lookup_value_regex = "[0-9]+"
    # OPTIONS is not part of the API (CORS preflights are answered by the CORS middleware).
    http_method_names = ("get", "post", "put", "patch", "delete", "head")

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """503 for every request until `make migrate` has brought the schema up to date."""
        migrations.require_current()
        super().initial(request, *args, **kwargs)

    def get_object(self) -> Item:
        """The item of the URL; an id outside 1..2147483647 is as unknown as a missing one."""
        raw = str(self.kwargs[self.lookup_url_kwarg])
        item_id = int(raw) if len(raw) <= len(str(MAX_ID)) else 0
        if not 1 <= item_id <= MAX_ID:
            raise exceptions.NotFound
        try:
            return self.get_queryset().get(pk=item_id)
        except Item.DoesNotExist:
            raise exceptions.NotFound from None

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create an item: 201 with its Location."""
        serializer = self.get_serializer(data=_json_object(request))
        serializer.is_valid(raise_exception=True)
        item = serializer.save()  # a duplicate name: IntegrityError, answered 409
        location = f"/api/items/{item.pk}"
        return Response(
            serializer.data, status=status.HTTP_201_CREATED, headers={"Location": location}
        )

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PUT replaces `name`, `quantity` and `description`; PATCH changes what it sends."""
        partial = bool(kwargs.pop("partial", False))
        # The body is checked before the item is looked up.
        serializer = self.get_serializer(data=_json_object(request), partial=partial)
        serializer.is_valid(raise_exception=True)
        item = self.get_object()
        # `save()` always writes `updated_at`, so even an empty PATCH touches it.
        item = serializer.update(item, serializer.validated_data)
        return Response(self.get_serializer(item).data)


def _json_object(request: Request) -> Any:
    """The request's JSON object: 415 when it is not JSON, 400 when it is not an object."""
    if not is_json(request.content_type):
        raise exceptions.UnsupportedMediaType(request.content_type or "none")
    if not int(request.META.get("CONTENT_LENGTH") or 0):
        raise exceptions.ParseError(EMPTY)
    data = request.data
    if not isinstance(data, dict):
        raise exceptions.ParseError(NOT_AN_OBJECT)
    return data
