"""`python manage.py createadmin`: create an admin user, or set a new password for one.

Reads ADMIN_USERNAME and ADMIN_PASSWORD when both are set, else asks (`createsuperuser`).
"""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand

MIN_PASSWORD_LENGTH = 12


class Command(BaseCommand):
    help = "Create an admin user, or set a new password for an existing one."

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("ADMIN_USERNAME", "").strip()
        password = os.environ.get("ADMIN_PASSWORD", "")
        if not (username and password):
            call_command("createsuperuser")
            return
        if len(password) < MIN_PASSWORD_LENGTH:
            raise SystemExit(
                "error: the admin password (ADMIN_PASSWORD) needs at least "
                f"{MIN_PASSWORD_LENGTH} characters"
            )
        user = User.objects.filter(username=username).first() or User(username=username)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            reasons = " ".join(exc.messages)
            raise SystemExit(f"error: the admin password (ADMIN_PASSWORD): {reasons}") from None
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Admin user {username!r} saved; sign in at /admin/")
