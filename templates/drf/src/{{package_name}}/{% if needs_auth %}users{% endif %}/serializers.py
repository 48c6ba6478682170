"""Users and tokens on the wire: the contract's rules and messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..items.serializers import NoSurrogates
from ..problems import (
    FIELD_REQUIRED,
    NO_NUL,
    NOT_A_STRING,
    NOT_NULL,
    PASSWORD_LENGTH,
    UNKNOWN_FIELD,
    USERNAME_RULE,
)
from .validators import PASSWORD_MAX, PASSWORD_MIN

USERNAME_PATTERN = r"^[A-Za-z0-9_.@+-]{3,150}$"
_USERNAME = re.compile(USERNAME_PATTERN.removeprefix("^").removesuffix("$"))


class _TextField(serializers.CharField):
    """A JSON string, taken as sent (no trimming), checked by `rule`."""

    rule = ""

    def __init__(self, **kwargs: Any) -> None:
        messages: dict[str, Any] = {
            "required": FIELD_REQUIRED,
            "null": NOT_NULL,
            "invalid": NOT_A_STRING,
            "blank": self.rule,
        }
        super().__init__(trim_whitespace=False, error_messages=messages, **kwargs)
        self.validators = [ProhibitNullCharactersValidator(message=NO_NUL), NoSurrogates()]

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if not self.follows_rule(data):
            raise serializers.ValidationError(self.rule)
        return data

    def follows_rule(self, value: str) -> bool:
        return True


@extend_schema_field({"type": "string", "pattern": USERNAME_PATTERN})
class UsernameField(_TextField):
    """3 to 150 characters of letters, digits and _ . @ + -."""

    rule = USERNAME_RULE

    def follows_rule(self, value: str) -> bool:
        return _USERNAME.fullmatch(value) is not None


@extend_schema_field(
    {"type": "string", "format": "password", "minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX}
)
class PasswordField(_TextField):
    """12 to 128 characters."""

    rule = PASSWORD_LENGTH

    def follows_rule(self, value: str) -> bool:
        return PASSWORD_MIN <= len(value) <= PASSWORD_MAX


@extend_schema_field({"type": "string", "format": "password"})
class CurrentPasswordField(_TextField):
    """Any string: whether it is the current password is checked afterwards."""

    rule = NOT_A_STRING

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_blank=True, **kwargs)


@extend_schema_field({"type": "string", "const": "bearer"})
class BearerField(serializers.CharField):
    """The token type: always `bearer`."""


class _ClosedSerializer(serializers.Serializer[Any]):
    """A JSON object with exactly these fields: another one is refused by name."""

    def to_internal_value(self, data: Any) -> Any:
        unknown = (
            {str(key): [UNKNOWN_FIELD] for key in data if key not in self.fields}
            if isinstance(data, Mapping)
            else {}
        )
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            raise serializers.ValidationError({**exc.detail, **unknown}) from None
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class SignUpSerializer(_ClosedSerializer):
    """A new account (sign-up, `make createuser`)."""

    username = UsernameField()
    password = PasswordField()


class PasswordChangeSerializer(_ClosedSerializer):
    """A new password, with the current one to prove it is the user asking."""

    current_password = CurrentPasswordField()
    new_password = PasswordField()


class UserSerializer(serializers.ModelSerializer[User]):
    """A user as others may see it: never the password or its hash."""

    username = serializers.CharField(read_only=True)
    is_admin = serializers.BooleanField(source="is_staff", read_only=True)
    created_at = serializers.DateTimeField(source="date_joined", read_only=True)

    class Meta:
        model = User
        fields = ("id", "username", "is_admin", "created_at")
        read_only_fields = fields


class TokenSerializer(serializers.Serializer[Any]):
    """An access token (RFC 6749 section 5.1): send it as `Authorization: Bearer <token>`."""

    access_token = serializers.CharField()
    token_type = BearerField()
    expires_in = serializers.IntegerField(help_text="Seconds until the token expires.")


class TokenFormSerializer(serializers.Serializer[Any]):
    """The OAuth 2.0 password grant (RFC 6749 section 4.3), form-encoded."""

    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})
    grant_type = serializers.ChoiceField(choices=["password"], required=False)
    scope = serializers.CharField(required=False, help_text="Ignored.")
    client_id = serializers.CharField(required=False, help_text="Ignored.")
    client_secret = serializers.CharField(required=False, help_text="Ignored.")
