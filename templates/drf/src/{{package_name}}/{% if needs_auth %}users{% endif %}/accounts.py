"""The users' queries and the sign-in rules: throttling, password checks and changes."""

from __future__ import annotations

import math
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import USERNAME_KEY_MAX, LoginAttempt, UserState
from .tokens import Claims, InvalidToken

LOGIN_FAILURE_LIMIT = 5
LOGIN_WINDOW = timedelta(minutes=15)


class BadCredentials(Exception):
    """Unknown username, wrong password or inactive user: the caller cannot tell which."""


class Throttled(Exception):
    """Too many failed sign-ins for this username; `retry_after` seconds until the next try."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class DuplicateUsername(Exception):
    """Another user has this username, in some case."""


class WrongCurrentPassword(Exception):
    """The current password given with a password change is not the user's."""


def username_key(username: str) -> str:
    """The username as the throttle counts it: lowercased, storable."""
    return username.lower().replace("\x00", "")[:USERNAME_KEY_MAX]


def find_user(username: str) -> User | None:
    """The user with this username, in any case."""
    if "\x00" in username:
        return None
    return User.objects.filter(username__iexact=username).first()


def authenticate(username: str, password: str) -> User:
    """The active user with this username and password.

    `Throttled` after LOGIN_FAILURE_LIMIT failures for the username within LOGIN_WINDOW,
    whatever the password; else `BadCredentials` for an unknown username, a wrong password
    or an inactive user, each failure recorded (and committed) first. An unknown username
    costs a password hash too, so that the answer's timing reveals nothing.
    """
    key = username_key(username)
    now = timezone.now()
    recent = list(
        LoginAttempt.objects.filter(username_key=key, attempted_at__gt=now - LOGIN_WINDOW)
        .order_by("attempted_at")
        .values_list("attempted_at", flat=True)
    )
    if len(recent) >= LOGIN_FAILURE_LIMIT:
        # The throttle lifts once fewer than the limit remain in the window.
        leaves_at = recent[len(recent) - LOGIN_FAILURE_LIMIT] + LOGIN_WINDOW
        raise Throttled(max(1, math.ceil((leaves_at - now).total_seconds())))
    user = find_user(username)
    if user is None:
        make_password(password)  # as long as checking a real password takes
    elif user.check_password(password) and user.is_active:
        return user
    record_failure(key)
    raise BadCredentials


def record_failure(key: str) -> None:
    """Count a failed sign-in, and forget this username's failures older than the window."""
    with transaction.atomic():
        LoginAttempt.objects.create(username_key=key)
        LoginAttempt.objects.filter(
            username_key=key, attempted_at__lte=timezone.now() - LOGIN_WINDOW
        ).delete()


def create_user(
    username: str, password: str, *, is_admin: bool = False, is_active: bool = True
) -> User:
    """A new user; `DuplicateUsername` when the name is taken in any case.

    An admin is a superuser of Django's admin too.
    """
    user = User(username=username, is_staff=is_admin, is_superuser=is_admin, is_active=is_active)
    user.set_password(password)
    try:
        with transaction.atomic():
            if User.objects.filter(username__iexact=username).exists():
                raise DuplicateUsername
            user.save()
    except IntegrityError:  # the unique index on lower(username), under a race
        raise DuplicateUsername from None
    return user


def user_for_token(claims: Claims) -> User:
    """The token's user; `InvalidToken` when gone, inactive, or it changed password since."""
    try:
        user = User.objects.select_related("state").get(pk=claims.user_id, is_active=True)
    except User.DoesNotExist:
        raise InvalidToken from None
    try:
        changed_at = user.state.password_changed_at
    except UserState.DoesNotExist:
        changed_at = None
    if changed_at is not None and claims.issued_at < math.floor(changed_at.timestamp()):
        raise InvalidToken
    return user


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password, ending every token issued before this second."""
    if not user.check_password(current):
        raise WrongCurrentPassword
    with transaction.atomic():
        user.set_password(new)
        user.save(update_fields=["password"])
        UserState.objects.update_or_create(
            user=user, defaults={"password_changed_at": timezone.now()}
        )
