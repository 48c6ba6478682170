"""The item on the wire: strict types, the contract's rules and messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from ..problems import (
    BLANK,
    FIELD_REQUIRED,
    NO_NUL,
    NO_SURROGATE,
    NOT_A_STRING,
    NOT_NULL,
    READ_ONLY_FIELD,
    UNKNOWN_FIELD,
    at_most,
    integer_between,
)
from .models import DESCRIPTION_MAX, MAX_QUANTITY, NAME_MAX, Item

# What `name` is stripped of: exactly these characters, not every Unicode space.
STRIP = " \t\n\r\f\v"
READ_ONLY = ("id", "created_at", "updated_at")
COMMON_MESSAGES = {"required": FIELD_REQUIRED, "null": NOT_NULL}


# For OpenAPI clients: 1..200 characters once stripped, no NUL. A pattern, because
# `maxLength` would count the raw string and call valid, padded names invalid.
NAME_PATTERN = (
    r"^[ \t\n\r\f\v]*[^ \t\n\r\f\v\x00]([^\x00]{0,198}[^ \t\n\r\f\v\x00])?[ \t\n\r\f\v]*$"
)


def _storable(validators: list[Any]) -> list[Any]:
    """Text PostgreSQL can store, checked first, with the contract's messages.

    No NUL, and no unpaired surrogate (JSON can escape one, "\\ud800"; no UTF-8 encodes it).
    """
    kept = [
        v
        for v in validators
        if not isinstance(v, ProhibitNullCharactersValidator | ProhibitSurrogateCharactersValidator)
    ]
    return [ProhibitNullCharactersValidator(message=NO_NUL), NoSurrogates(), *kept]


class NoSurrogates(ProhibitSurrogateCharactersValidator):
    """DRF's check of every CharField, with the contract's message (no code point)."""

    message = NO_SURROGATE


@extend_schema_field({"type": "string", "pattern": NAME_PATTERN})
class NameField(serializers.CharField):
    """A string, stripped of surrounding whitespace, then 1..200 characters, without NUL."""

    def __init__(self, **kwargs: Any) -> None:
        messages: dict[str, Any] = {
            **COMMON_MESSAGES,
            "invalid": NOT_A_STRING,
            "blank": BLANK,
            "min_length": BLANK,
            "max_length": at_most(NAME_MAX),
        }
        super().__init__(
            min_length=1,
            max_length=NAME_MAX,
            trim_whitespace=False,
            error_messages=messages,
            **kwargs,
        )
        self.validators = _storable(self.validators)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return data.strip(STRIP)


@extend_schema_field({"type": "string", "maxLength": DESCRIPTION_MAX, "pattern": r"^[^\x00]*$"})
class DescriptionField(serializers.CharField):
    """An optional string of at most 2000 characters, without NUL, or null."""

    def __init__(self, **kwargs: Any) -> None:
        messages: dict[str, Any] = {
            **COMMON_MESSAGES,
            "invalid": NOT_A_STRING,
            "max_length": at_most(DESCRIPTION_MAX),
        }
        super().__init__(
            max_length=DESCRIPTION_MAX,
            allow_null=True,
            allow_blank=True,
            trim_whitespace=False,
            error_messages=messages,
            **kwargs,
        )
        self.validators = _storable(self.validators)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return data


class QuantityField(serializers.IntegerField):
    """A JSON integer from 0 to 1,000,000 (a boolean, float or string is refused)."""

    def __init__(self, **kwargs: Any) -> None:
        message = integer_between(0, MAX_QUANTITY)
        messages: dict[str, Any] = {
            **COMMON_MESSAGES,
            "invalid": message,
            "min_value": message,
            "max_value": message,
            "max_string_length": message,
        }
        super().__init__(min_value=0, max_value=MAX_QUANTITY, error_messages=messages, **kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(data)


class ItemSerializer(serializers.ModelSerializer[Item]):
    """An item: `name` and `quantity` are required on create and PUT, any subset on PATCH."""

    name = NameField()
    description = DescriptionField(default=None)
    quantity = QuantityField()

    class Meta:
        model = Item
        fields = ("id", "name", "description", "quantity", "created_at", "updated_at")
        read_only_fields = READ_ONLY

    def to_internal_value(self, data: Any) -> Any:
        """Validate the fields, and refuse read-only and unknown ones by name."""
        errors: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            for key in data:
                if key in READ_ONLY:
                    errors[str(key)] = [READ_ONLY_FIELD]
                elif key not in self.fields:
                    errors[str(key)] = [UNKNOWN_FIELD]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            raise serializers.ValidationError({**exc.detail, **errors}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value
