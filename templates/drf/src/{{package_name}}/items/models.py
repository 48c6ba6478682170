"""The item, stored by Django's ORM."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual

from ..problems import BLANK, DUPLICATE_NAME, at_most, integer_between

MAX_ID = 2_147_483_647  # the primary key is a 32-bit `integer` on PostgreSQL
NAME_MAX = 200
DESCRIPTION_MAX = 2000
MAX_QUANTITY = 1_000_000
# What `name` is stripped of: exactly these characters, not every Unicode space.
STRIP = " \t\n\r\f\v"
QUANTITY_MESSAGE = integer_between(0, MAX_QUANTITY)


def validate_not_blank(value: str) -> None:
    """A name needs a character other than the ones it is stripped of."""
    if not value.strip(STRIP):
        raise ValidationError(BLANK, code="blank")


class Item(models.Model):
    """Something with a unique name and a quantity.

    The validators apply the API's rules to other writers (the admin); the database
    checks them too, so that nothing written around the application breaks them.
    """

    id = models.AutoField(primary_key=True)
    name = models.CharField(
        max_length=NAME_MAX,
        unique=True,
        validators=[validate_not_blank],
        error_messages={"blank": BLANK, "max_length": at_most(NAME_MAX), "unique": DUPLICATE_NAME},
    )
    description = models.CharField(
        max_length=DESCRIPTION_MAX,
        null=True,
        blank=True,
        error_messages={"max_length": at_most(DESCRIPTION_MAX)},
    )
    quantity = models.IntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(MAX_QUANTITY)],
        error_messages={
            "invalid": QUANTITY_MESSAGE,
            "min_value": QUANTITY_MESSAGE,
            "max_value": QUANTITY_MESSAGE,
        },
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gte=0, quantity__lte=MAX_QUANTITY),
                name="ck_items_quantity_range",
            ),
            models.CheckConstraint(
                condition=GreaterThanOrEqual(
                    Length(models.Func(models.F("name"), models.Value(STRIP), function="TRIM")),
                    1,
                ),
                name="ck_items_name_not_blank",
            ),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("name"), NAME_MAX), name="ck_items_name_length"
            ),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("description"), DESCRIPTION_MAX),
                name="ck_items_description_length",
            ),
        ]

    def __str__(self) -> str:
        return self.name
