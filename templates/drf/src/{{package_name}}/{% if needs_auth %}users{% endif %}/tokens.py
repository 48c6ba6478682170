"""Access tokens: JWTs signed with HS256 and SECRET_KEY, issued and read by simplejwt.

A token carries exactly `sub` (the user id, as a string), `iat` and `exp` (whole seconds).
One that also carries `jti` or `token_type`, as other issuers add, is read the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from ..items.models import MAX_ID

ALGORITHM = "HS256"
CHALLENGE = "Bearer"
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'  # noqa: S105 - not a secret
REQUIRED_CLAIMS = ("sub", "iat", "exp")
_USER_ID = re.compile(r"[0-9]{1,10}")


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or no longer valid for its user."""


@dataclass(frozen=True)
class Claims:
    """What a valid token says: whose it is, and when it was issued (epoch seconds)."""

    user_id: int
    issued_at: int


def issue_token(user_id: int) -> tuple[str, int]:
    """A new access token for the user, and how many seconds it is valid."""
    token = AccessToken()
    # Without the token type claim, which SIMPLE_JWT turns off (simplejwt keys it `None`).
    token.payload = {claim: value for claim, value in token.payload.items() if claim is not None}
    token["sub"] = str(user_id)
    return str(token), int(token.lifetime.total_seconds())


def decode_token(raw: str) -> Claims:
    """The claims of a valid token; `InvalidToken` for anything wrong with it."""
    try:
        payload: dict[str, Any] = dict(AccessToken(raw).payload)  # type: ignore[arg-type]
    except (TokenError, KeyError, TypeError, ValueError):
        raise InvalidToken from None
    if any(claim not in payload for claim in REQUIRED_CLAIMS):
        raise InvalidToken
    subject, issued_at = payload["sub"], payload["iat"]
    if not (isinstance(subject, str) and _USER_ID.fullmatch(subject)):
        raise InvalidToken
    if isinstance(issued_at, bool) or not isinstance(issued_at, int):
        raise InvalidToken
    user_id = int(subject)
    if not 1 <= user_id <= MAX_ID:
        raise InvalidToken
    return Claims(user_id=user_id, issued_at=issued_at)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for any other header."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
