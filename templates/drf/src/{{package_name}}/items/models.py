"""The item, stored by Django's ORM."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

MAX_ID = 2_147_483_647  # the primary key is a 32-bit `integer` on PostgreSQL
NAME_MAX = 200
DESCRIPTION_MAX = 2000
MAX_QUANTITY = 1_000_000


class Item(models.Model):
    """Something with a unique name and a quantity."""

    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=NAME_MAX, unique=True)
    description = models.CharField(max_length=DESCRIPTION_MAX, null=True, blank=True)
    quantity = models.IntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(MAX_QUANTITY)]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name
