# The users' side tables, and usernames unique without regard to case.
#
# Users whose names differ only in case stop the migration, which names them: rename
# or delete all but one, then run make migrate again.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

DUPLICATES = "SELECT lower(username) FROM auth_user GROUP BY lower(username) HAVING count(*) > 1"


def refuse_usernames_differing_in_case(
    apps: StateApps, schema_editor: BaseDatabaseSchemaEditor
) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(DUPLICATES + " ORDER BY 1")
        found = [str(row[0]) for row in cursor.fetchall()]
    if found:
        raise CommandError(
            "some usernames differ only in case; rename or delete all but one of each, "
            "then run make migrate again: " + ", ".join(found)
        )


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="LoginAttempt",
            fields=[
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("username_key", models.CharField(max_length=150)),
                ("attempted_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["username_key", "attempted_at"], name="ix_login_attempts_key"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="UserState",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="state",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("password_changed_at", models.DateTimeField(null=True)),
            ],
        ),
        migrations.RunPython(refuse_usernames_differing_in_case, migrations.RunPython.noop),
        migrations.RunSQL(
            "CREATE UNIQUE INDEX uq_users_username_lower ON auth_user (lower(username))",
            "DROP INDEX uq_users_username_lower",
        ),
    ]
