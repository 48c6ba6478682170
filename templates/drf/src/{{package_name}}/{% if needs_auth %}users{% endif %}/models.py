"""What the API keeps beside Django's users: password changes and failed sign-ins."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

USERNAME_KEY_MAX = 150


class UserState(models.Model):
    """When the user's password last changed: tokens issued before it are refused."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="state"
    )
    password_changed_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"state of user {self.pk}"


class LoginAttempt(models.Model):
    """One failed sign-in for a username (lowercased); five in 15 minutes throttle it."""

    id = models.AutoField(primary_key=True)
    username_key = models.CharField(max_length=USERNAME_KEY_MAX)
    attempted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["username_key", "attempted_at"], name="ix_login_attempts_key"),
        ]

    def __str__(self) -> str:
        return f"failed sign-in for {self.username_key} at {self.attempted_at}"
