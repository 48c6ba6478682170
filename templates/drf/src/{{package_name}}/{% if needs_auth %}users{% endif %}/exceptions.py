"""A refusal with the contract's own `detail`, field errors and headers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rest_framework import exceptions


class Refused(exceptions.APIException):
    """An API error answered as the problem `status` with this `detail` (errors.py)."""

    def __init__(
        self,
        status: int,
        detail: str,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status
        self.problem_detail = detail
        self.headers = dict(headers or {})
        self.errors = errors
