"""The API's password rule, for Django's own forms and commands too."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError

from ..problems import PASSWORD_LENGTH

PASSWORD_MIN = 12
PASSWORD_MAX = 128


class PasswordLengthValidator:
    """A password of 12 to 128 characters (AUTH_PASSWORD_VALIDATORS)."""

    def validate(self, password: str, user: AbstractBaseUser | None = None) -> None:
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise ValidationError(PASSWORD_LENGTH, code="password_length")

    def get_help_text(self) -> str:
        return f"Your password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters."
