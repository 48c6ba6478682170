"""The bearer check of every protected API view (settings.REST_FRAMEWORK)."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from ..problems import INVALID_TOKEN
from .accounts import user_for_token
from .tokens import CHALLENGE, Claims, InvalidToken, bearer_token, decode_token


class InvalidTokenError(exceptions.AuthenticationFailed):
    """A bearer token that is not (or no longer) valid: 401 with `error="invalid_token"`."""

    default_detail = INVALID_TOKEN
    default_code = "invalid_token"


class BearerAuthentication(BaseAuthentication):
    """`Authorization: Bearer <access token>`; without one the request is anonymous."""

    def authenticate(self, request: Request) -> tuple[User, Claims] | None:
        token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            return None  # the permission check answers 401 with the plain challenge
        try:
            claims = decode_token(token)
            return user_for_token(claims), claims
        except InvalidToken:
            raise InvalidTokenError from None

    def authenticate_header(self, request: Request) -> str:
        return CHALLENGE
