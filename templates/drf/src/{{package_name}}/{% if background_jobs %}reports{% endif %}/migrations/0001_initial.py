# The reports table (the background jobs' reports).

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Report",
            fields=[
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("status", models.CharField(max_length=10)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("finished_at", models.DateTimeField(null=True)),
                ("item_count", models.IntegerField(null=True)),
                ("total_quantity", models.BigIntegerField(null=True)),
            ],
            options={"ordering": ("id",)},
        ),
    ]
