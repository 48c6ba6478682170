"""`python manage.py createuser` (`make createuser`): create a user of the API.

Reads USERNAME and PASSWORD (and ADMIN=true, ACTIVE=false) from the environment when
they are set, and then never reads the terminal; else asks, the password twice, hidden.
The username and password follow the API's rules, with its messages.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.core.management.base import BaseCommand

from ....problems import DUPLICATE_USERNAME
from ...accounts import DuplicateUsername, create_user
from ...serializers import SignUpSerializer

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in TRUE + FALSE:
        raise SystemExit(f"error: {name} must be true or false, not {value!r}")
    return value in TRUE


class Command(BaseCommand):
    help = "Create a user (USERNAME, PASSWORD, ADMIN, ACTIVE from the environment, else asks)."

    def handle(self, *args: Any, **options: Any) -> None:
        is_admin = _flag("ADMIN", default=False)
        is_active = _flag("ACTIVE", default=True)
        username = os.environ.get("USERNAME")
        password = os.environ.get("PASSWORD")
        if username is None:
            username = input("Username: ")
        if password is None:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise SystemExit("error: password: the two passwords differ")
        serializer = SignUpSerializer(data={"username": username, "password": password})
        if not serializer.is_valid():
            field, messages = next(iter(serializer.errors.items()))
            raise SystemExit(f"error: {field}: {messages[0]}")
        try:
            user = create_user(username, password, is_admin=is_admin, is_active=is_active)
        except DuplicateUsername:
            raise SystemExit(f"error: username: {DUPLICATE_USERNAME}") from None
        self.stdout.write(f"created user {user.username} (id {user.pk})")
