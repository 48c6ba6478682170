"""Sign-in (POST /api/auth/token), sign-up and the current user (/api/users...)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser, FormParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..items.views import _json_object as json_object
from ..migrations_state import migrations
from ..negotiation import JSONOnly
from ..openapi import problems
from ..problems import (
    BAD_CREDENTIALS,
    CURRENT_PASSWORD_INCORRECT,
    DUPLICATE_USERNAME,
    FIELD_REQUIRED,
    GRANT_TYPE,
    NOT_FORM_TYPE,
    OPERATIONS,
    PASSWORD_CHANGED,
    SIGN_IN_THROTTLED,
    SIGN_UP_CLOSED,
    TOKEN,
    USER,
    USER_CREATED,
    USER_LOCATION,
    WRONG_CURRENT_PASSWORD,
)
from .accounts import (
    BadCredentials,
    DuplicateUsername,
    Throttled,
    WrongCurrentPassword,
    authenticate,
    change_password,
    create_user,
)
from .exceptions import Refused
from .serializers import (
    PasswordChangeSerializer,
    SignUpSerializer,
    TokenFormSerializer,
    TokenSerializer,
    UserSerializer,
)
from .tokens import CHALLENGE, issue_token

FORM = "application/x-www-form-urlencoded"
_USER_LOCATION = OpenApiParameter(
    "Location",
    str,
    OpenApiParameter.HEADER,
    description=USER_LOCATION,
    response=[201],
)


class FormOnly(JSONOnly):
    """Parse only form-encoded bodies (the token view answers 415 to anything else)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None) if _is_form(request.content_type) else None


def _is_form(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == FORM


def _user(request: Request) -> User:
    """The signed-in user (the permission check lets no one else through)."""
    return cast(User, request.user)


class _UsersView(APIView):
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """503 for every request until `make migrate` has brought the schema up to date."""
        migrations.require_current()
        super().initial(request, *args, **kwargs)


class TokenView(_UsersView):
    """POST /api/auth/token: the OAuth 2.0 password grant."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    parser_classes = (FormParser,)
    content_negotiation_class = FormOnly
    http_method_names = ("post",)

    @extend_schema(
        **OPERATIONS["create_token"],
        tags=["auth"],
        request={FORM: TokenFormSerializer},
        responses={
            200: OpenApiResponse(TokenSerializer, description=TOKEN),
            **problems(401, 413, 415, 422, 429, 503),
        },
    )
    def post(self, request: Request) -> Response:
        """Exchange a username and password for an access token."""
        if not _is_form(request.content_type):
            raise Refused(415, NOT_FORM_TYPE)
        form = request.data
        # An empty field counts as a missing one, as OAuth 2.0 clients send them.
        errors = {name: [FIELD_REQUIRED] for name in ("username", "password") if not form.get(name)}
        grant_type = form.get("grant_type")
        if grant_type and grant_type != "password":
            errors["grant_type"] = [GRANT_TYPE]
        if errors:
            raise serializers.ValidationError(errors)
        try:
            user = authenticate(str(form["username"]), str(form["password"]))
        except Throttled as exc:
            raise Refused(429, SIGN_IN_THROTTLED, {"Retry-After": str(exc.retry_after)}) from None
        except BadCredentials:
            raise Refused(401, BAD_CREDENTIALS, {"WWW-Authenticate": CHALLENGE}) from None
        token, expires_in = issue_token(user.pk)
        body = {"access_token": token, "token_type": "bearer", "expires_in": expires_in}
        return Response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


class UserListView(_UsersView):
    """POST /api/users: sign-up, when ALLOW_SIGNUP is on."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    http_method_names = ("post",)

    @extend_schema(
        **OPERATIONS["create_user"],
        tags=["users"],
        request=SignUpSerializer,
        parameters=[_USER_LOCATION],
        responses={
            201: OpenApiResponse(UserSerializer, description=USER_CREATED),
            **problems(400, 403, 409, 413, 415, 422, 503),
        },
    )
    def post(self, request: Request) -> Response:
        """Create an account: 201 with its Location."""
        if not settings.ALLOW_SIGNUP:
            raise Refused(403, SIGN_UP_CLOSED)
        serializer = SignUpSerializer(data=json_object(request))
        serializer.is_valid(raise_exception=True)
        try:
            user = create_user(**serializer.validated_data)
        except DuplicateUsername:
            raise Refused(409, DUPLICATE_USERNAME) from None
        headers = {"Location": f"/api/users/{user.pk}"}
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED, headers=headers)


class CurrentUserView(_UsersView):
    """GET /api/users/me."""

    http_method_names = ("get", "head")

    @extend_schema(
        **OPERATIONS["get_current_user"],
        tags=["users"],
        responses={
            200: OpenApiResponse(UserSerializer, description=USER),
            **problems(401, 503),
        },
    )
    def get(self, request: Request) -> Response:
        """The user the token was issued to."""
        return Response(UserSerializer(_user(request)).data)


class PasswordView(_UsersView):
    """POST /api/users/me/password."""

    http_method_names = ("post",)

    @extend_schema(
        **OPERATIONS["change_password"],
        tags=["users"],
        request=PasswordChangeSerializer,
        responses={
            204: OpenApiResponse(description=PASSWORD_CHANGED),
            **problems(400, 401, 413, 415, 422, 503),
        },
    )
    def post(self, request: Request) -> Response:
        """Change the password: every token issued before this second stops working."""
        serializer = PasswordChangeSerializer(data=json_object(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            change_password(_user(request), data["current_password"], data["new_password"])
        except WrongCurrentPassword:
            errors = [{"field": "current_password", "message": WRONG_CURRENT_PASSWORD}]
            raise Refused(400, CURRENT_PASSWORD_INCORRECT, errors=errors) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
