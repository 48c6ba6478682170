"""Django's sign-in (the admin's login page) under the same throttle as the API's."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from .accounts import BadCredentials, Throttled, authenticate


class ThrottledModelBackend(ModelBackend):
    """Checks a username and password with `accounts.authenticate`: failures are counted."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if username is None or password is None:
            return None
        try:
            return authenticate(username, password)
        except BadCredentials:
            return None
        except Throttled:
            raise PermissionDenied from None  # Django stops trying: the login is refused
