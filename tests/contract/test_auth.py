"""needs_auth: users, bearer tokens and owned items (docs/CONTRACT.md section 7).

Against the variant's real ``make serve`` (2 workers, production settings): the
harness serves it with a known ``SECRET_KEY`` (``harness.SECRET_KEY``), so the bad
tokens here are forged with PyJWT, and creates users with ``make createuser``.

- the token endpoint: the password grant as a form, 415/422 for anything else, extra
  OAuth2 fields ignored, ``Cache-Control: no-store``; its 401 is one and the same for an
  unknown user, a wrong password and an inactive user, and takes as long for each;
- every bad token is a 401 ``Bearer error="invalid_token"``, a missing one a plain
  ``Bearer`` challenge; never a 422 or 500;
- two users see only their own items (another's is a 404), names are unique per
  owner, an admin sees and changes every item;
- 5 failed sign-ins for a username (any case, known or not) within 15 minutes, then 429
  with Retry-After, the right password included, across both workers;
- a password change refuses every token issued before it;
- sign-up: off by default (403), on with ``ALLOW_SIGNUP=true`` (a server of its own on
  the same database: its users serve the other tests too);
- what stays public, and what OpenAPI says.

Variants without needs_auth run none of these (``with_auth`` leaves them out of the
parametrization); ``test_open_variant_has_no_auth`` checks those instead.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import httpx
import jwt
import pytest
from matrix import Variant

from contract.helpers import (
    BAD_CREDENTIALS,
    CHALLENGE,
    CURRENT_PASSWORD_INCORRECT,
    DUPLICATE_USERNAME,
    FIELD_REQUIRED,
    GRANT_TYPE,
    INVALID_TOKEN,
    INVALID_TOKEN_CHALLENGE,
    LOGIN_FAILURE_LIMIT,
    LOGIN_WINDOW_SECONDS,
    NOT_FORM_TYPE,
    PASSWORD_LENGTH,
    READ_ONLY_FIELD,
    SIGN_IN_THROTTLED,
    SIGN_UP_CLOSED,
    TOKEN_KEYS,
    UNAUTHENTICATED,
    USER_KEYS,
    USERNAME_RULE,
    WRONG_CURRENT_PASSWORD,
    Database,
    assert_item,
    assert_json,
    assert_problem,
    check_common,
    create,
    describe,
    parse_ts,
    uniq,
)

with_auth = harness.only_if(lambda v: v.needs_auth)
without_auth = harness.only_if(lambda v: not v.needs_auth)

TOKEN_PATH = "/api/auth/token"
FORM = "application/x-www-form-urlencoded"
SCHEME = "OAuth2PasswordBearer"
SECURITY_SCHEME = {"type": "oauth2", "flows": {"password": {"tokenUrl": TOKEN_PATH, "scopes": {}}}}
# Sign-ups on the sign-up server, handed out to the tests that need fresh users.
POOL_SIZE = 20


def _name(prefix: str = "u") -> str:
    """A fresh username (letters and digits), unique per run."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --------------------------------------------------------------------------- users


@dataclass
class Account:
    """A user of the main server's database, and its password."""

    id: int
    username: str
    password: str
    is_admin: bool = False
    tokens: list[str] = field(default_factory=list)


def _sign_up(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/api/users", json={"username": username, "password": password})


@dataclass
class Users:
    """The users the tests act as: the harness's default user, users signed up on the
    sign-up server (fresh ones per test), an admin and an inactive user (`make createuser`
    with ADMIN=true, ACTIVE=false)."""

    server: harness.Server
    signup: harness.Server
    pool: list[Account]
    variant: Variant
    db: Database

    def fresh(self) -> Account:
        assert self.pool, "the pool of signed-up users ran out: raise POOL_SIZE"
        return self.pool.pop()

    def default(self) -> Account:
        u = self.server.user()
        return Account(u.id, u.username, u.password, u.is_admin)

    def created(self, *, admin: bool = False, active: bool = True) -> Account:
        name = _name("admin" if admin else "idle")
        u = self.server.user(name, admin=admin, active=active)
        return Account(u.id, u.username, u.password, admin)

    def token(self, account: Account) -> str:
        r = token_request(self.server, account.username, account.password)
        body = assert_json(r, 200)
        account.tokens.append(body["access_token"])
        return str(body["access_token"])

    def client(self, account: Account | None = None, token: str | None = None) -> httpx.Client:
        """A client of the main server sending this account's (or this) token."""
        if account is not None and token is None:
            token = self.token(account)
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.server.client(authenticated=False, headers=headers)


def token_request(
    server: harness.Server, username: str, password: str, **extra: str
) -> httpx.Response:
    """The password grant, on a connection of its own (so requests spread over workers)."""
    with server.client(authenticated=False, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        return c.post(TOKEN_PATH, data={"username": username, "password": password, **extra})


@pytest.fixture(scope="module")
def signup_server(
    variant: Variant,
    project: Path,
    main_db: Database,
    server: harness.Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[harness.Server]:
    """A server with ALLOW_SIGNUP=true and the default token lifetime, on the main
    server's database (its users are the main server's), for this module only."""
    logs = harness.variant_tmp(tmp_path_factory, variant, "signup")
    srv = harness.Server(
        project,
        database_url=main_db.url,
        log_path=logs / "server.log",
        env={"ALLOW_SIGNUP": "true", "ACCESS_TOKEN_MINUTES": None},
    )
    with srv:
        yield srv


@pytest.fixture(scope="module")
def users(
    variant: Variant, server: harness.Server, signup_server: harness.Server, main_db: Database
) -> Users:
    pool = []
    with signup_server.client(authenticated=False) as client:
        for _ in range(POOL_SIZE):
            username, password = _name(), f"pw-{uuid.uuid4().hex}"
            body = assert_json(_sign_up(client, username, password), 201)
            pool.append(Account(body["id"], username, password))
    return Users(server, signup_server, pool, variant, main_db)


@pytest.fixture
def anon(server: harness.Server) -> Iterator[httpx.Client]:
    """A client of the main server that sends no token."""
    with server.client(authenticated=False) as client:
        yield client


# --------------------------------------------------------------------------- assertions


def assert_unauthenticated(r: httpx.Response) -> None:
    """No usable credentials: 401, the plain challenge."""
    assert_problem(r, 401, detail=UNAUTHENTICATED)
    assert r.headers.get("www-authenticate") == CHALLENGE, "WWW-Authenticate" + describe(r)


def assert_invalid_token(r: httpx.Response, why: str = "") -> None:
    """A bad token: 401 with the invalid_token challenge (never 422 or 500)."""
    assert r.status_code == 401, f"{why}: expected 401" + describe(r)
    assert_problem(r, 401, detail=INVALID_TOKEN)
    assert r.headers.get("www-authenticate") == INVALID_TOKEN_CHALLENGE, (
        f"{why}: WWW-Authenticate" + describe(r)
    )


def assert_bad_credentials(r: httpx.Response) -> None:
    assert_problem(r, 401, detail=BAD_CREDENTIALS)
    assert r.headers.get("www-authenticate") == CHALLENGE, "WWW-Authenticate" + describe(r)


def assert_throttled(r: httpx.Response) -> int:
    assert_problem(r, 429, detail=SIGN_IN_THROTTLED)
    retry = r.headers.get("retry-after", "")
    assert retry.isdigit() and 1 <= int(retry) <= LOGIN_WINDOW_SECONDS, (
        "Retry-After must be the seconds left in the window" + describe(r)
    )
    return int(retry)


def assert_token(r: httpx.Response, account: Account, minutes: int) -> dict[str, Any]:
    body = assert_json(r, 200)
    assert set(body) == TOKEN_KEYS, f"token response members: {sorted(body)}" + describe(r)
    assert body["token_type"] == "bearer", describe(r)
    assert body["expires_in"] == minutes * 60 and type(body["expires_in"]) is int, describe(r)
    cache = [d.strip().lower() for d in r.headers.get("cache-control", "").split(",")]
    assert "no-store" in cache, "Cache-Control: no-store" + describe(r)
    assert r.headers.get("pragma", "").lower() == "no-cache", "Pragma: no-cache" + describe(r)
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header.get("alg") == "HS256", header
    claims = jwt.decode(token, harness.SECRET_KEY, algorithms=["HS256"])
    assert {"sub", "iat", "exp"} <= set(claims), claims
    assert claims["sub"] == str(account.id), f"sub must be the user id as a string: {claims}"
    assert claims["exp"] - claims["iat"] == minutes * 60, claims
    assert abs(claims["iat"] - time.time()) < 60, f"iat is not now: {claims}"
    return body


def forge(sub: Any = None, *, key: str = harness.SECRET_KEY, algorithm: str = "HS256",
          **claims: Any) -> str:  # fmt: skip
    """A token signed with ``key``: sub, iat (now) and exp (in 10 minutes) unless given."""
    now = int(time.time())
    payload = {"sub": sub, "iat": now, "exp": now + 600, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    with warnings.catch_warnings():
        # PyJWT warns that the 43-byte key is short for HS384/HS512: the point here.
        warnings.simplefilter("ignore")
        return jwt.encode(payload, key, algorithm=algorithm)


def unsigned(sub: str) -> str:
    """An `alg: none` token (no signature)."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps({"sub": sub, "iat": now, "exp": now + 600}).encode())
    return f"{header}.{payload}."


def call(client: httpx.Client, token: str | None, what: str = "list") -> httpx.Response:
    """A protected request with this bearer token (None: no Authorization header)."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if what == "create":
        return client.post("/api/items", json={"name": uniq(), "quantity": 1}, headers=headers)
    if what == "me":
        return client.get("/api/users/me", headers=headers)
    return client.get("/api/items", headers=headers)


# --------------------------------------------------------------------------- without auth


@without_auth
def test_open_variant_has_no_auth(variant: Variant, server: harness.Server) -> None:
    """needs_auth false: the API is open as before, no token endpoint, no security scheme."""
    with server.client() as api:
        body = assert_json(api.get("/api/items"), 200)
        assert "items" in body
        item = create(api)
        assert "owner_id" not in item, item
        assert_problem(api.post(TOKEN_PATH, data={"username": "a", "password": "b"}), 404)
        assert_problem(api.get("/api/users/me"), 404)
        spec = assert_json(api.get("/openapi.json"), 200)
        assert "securitySchemes" not in spec.get("components", {}), spec["components"].keys()
        assert "security" not in spec
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                if isinstance(op, dict):
                    assert "security" not in op, f"{method.upper()} {path} declares security"


# --------------------------------------------------------------------------- the token endpoint


@with_auth
def test_token_issue_and_use(variant: Variant, users: Users) -> None:
    account = users.fresh()
    r = token_request(users.server, account.username, account.password)
    body = assert_token(r, account, harness.TOKEN_MINUTES)
    with users.client(token=body["access_token"]) as api:
        me = assert_json(api.get("/api/users/me"), 200)
        assert set(me) == USER_KEYS, me
        assert me["id"] == account.id and me["username"] == account.username, me
        assert me["is_admin"] is False, me
        parse_ts(me["created_at"])
        assert account.password not in json.dumps(me), me
        assert_json(api.get("/api/items"), 200)
    # The scheme is case-insensitive (RFC 9110 section 11.1).
    with users.server.client(authenticated=False) as c:
        r = c.get("/api/items", headers={"Authorization": f"bearer {body['access_token']}"})
        assert_json(r, 200)
    # The default lifetime (ACCESS_TOKEN_MINUTES unset): 30 minutes.
    with users.signup.client(authenticated=False) as c:
        r = c.post(TOKEN_PATH, data={"username": account.username, "password": account.password})
        assert_token(r, account, 30)


@with_auth
def test_token_grant_type_and_extra_fields(variant: Variant, users: Users) -> None:
    """grant_type=password accepted; Swagger UI's extra OAuth2 fields ignored; another
    grant_type a 422 naming it."""
    account = users.fresh()
    extra = {"grant_type": "password", "scope": "", "client_id": "swagger", "client_secret": "x"}
    r = token_request(users.server, account.username, account.password, **extra)
    assert_token(r, account, harness.TOKEN_MINUTES)
    r = token_request(users.server, account.username, account.password, scope="items:read")
    assert_token(r, account, harness.TOKEN_MINUTES)
    r = token_request(
        users.server, account.username, account.password, grant_type="client_credentials"
    )
    assert_problem(r, 422, fields={"grant_type"}, messages={"grant_type": GRANT_TYPE})


@with_auth
def test_token_needs_a_form(variant: Variant, users: Users, anon: httpx.Client) -> None:
    account = users.fresh()
    credentials = {"username": account.username, "password": account.password}
    r = anon.post(TOKEN_PATH, json=credentials)
    assert_problem(r, 415, detail=NOT_FORM_TYPE)
    r = anon.post(
        TOKEN_PATH, content=b"username=a&password=b", headers={"Content-Type": "text/plain"}
    )
    assert_problem(r, 415, detail=NOT_FORM_TYPE)
    r = anon.post(TOKEN_PATH, data={"password": account.password})
    assert_problem(r, 422, fields={"username"}, messages={"username": FIELD_REQUIRED})
    r = anon.post(TOKEN_PATH, data={"username": account.username})
    assert_problem(r, 422, fields={"password"}, messages={"password": FIELD_REQUIRED})
    r = anon.post(TOKEN_PATH, content=b"", headers={"Content-Type": FORM})
    assert_problem(
        r,
        422,
        fields={"username", "password"},
        messages={"username": FIELD_REQUIRED, "password": FIELD_REQUIRED},
    )
    # An empty field is a missing one (as a blank input of an HTML form): 422, never a
    # 401 that would count a failed sign-in; an empty grant_type is an absent one.
    r = anon.post(TOKEN_PATH, data={"username": "", "password": account.password})
    assert_problem(r, 422, fields={"username"}, messages={"username": FIELD_REQUIRED})
    r = anon.post(TOKEN_PATH, data={"username": account.username, "password": ""})
    assert_problem(r, 422, fields={"password"}, messages={"password": FIELD_REQUIRED})
    data = {"username": account.username, "password": account.password, "grant_type": ""}
    assert_token(anon.post(TOKEN_PATH, data=data), account, harness.TOKEN_MINUTES)
    # Content-Type parameters are fine.
    r = anon.post(
        TOKEN_PATH,
        content=f"username={account.username}&password={account.password}".encode(),
        headers={"Content-Type": f"{FORM}; charset=utf-8"},
    )
    assert_token(r, account, harness.TOKEN_MINUTES)


@with_auth
def test_bad_credentials_are_one_401(variant: Variant, users: Users) -> None:
    """Unknown user, wrong password, inactive user: the same 401."""
    account = users.fresh()
    assert_bad_credentials(token_request(users.server, _name("nobody"), "whatever-password"))
    assert_bad_credentials(token_request(users.server, account.username, "wrong-password!"))
    inactive = users.created(active=False)
    assert_bad_credentials(token_request(users.server, inactive.username, inactive.password))


# --------------------------------------------------------------------------- bad tokens


@with_auth
def test_missing_token_is_a_plain_challenge(variant: Variant, anon: httpx.Client) -> None:
    for what in ("list", "create", "me"):
        assert_unauthenticated(call(anon, None, what))
    for value in ("Basic dXNlcjpwYXNzd29yZA==", "Token abc", "Bearer", "", "Bearerabc"):
        r = anon.get("/api/items", headers={"Authorization": value})
        assert r.status_code == 401, f"Authorization: {value!r}" + describe(r)
        assert_problem(r, 401, detail=r.json().get("detail"))
        assert r.headers.get("www-authenticate", "").startswith(CHALLENGE), describe(r)
    for path in ("/api/items/1",):
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            r = anon.request(method, path, json={"name": "x", "quantity": 1})
            assert_unauthenticated(r)


@with_auth
def test_every_bad_token_is_invalid_token(
    variant: Variant, users: Users, anon: httpx.Client
) -> None:
    """Forged with PyJWT: malformed, tampered, another key, alg none, another algorithm,
    expired, missing or odd claims, an unknown user. Each a 401 invalid_token."""
    account = users.fresh()
    good = users.token(account)
    sub = str(account.id)
    head, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    other_sub = _b64(json.dumps({**claims, "sub": str(account.id + 1)}).encode())
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    now = int(time.time())
    bad = {
        "malformed: not a JWT": "not-a-jwt",
        "malformed: three dots of nothing": "a.b.c",
        "malformed: bad base64": "%%%.%%%.%%%",
        "malformed: two segments": f"{head}.{payload}",
        "malformed: JSON that is not an object": f"{_b64(b'[1]')}.{_b64(b'[2]')}.{signature}",
        "malformed: very long": "x" * 8000,
        "tampered: payload changed": f"{head}.{other_sub}.{signature}",
        "tampered: signature changed": f"{head}.{payload}.{flipped}",
        "another key": forge(sub, key="another-key-that-is-long-enough-0123456789"),
        "alg none": unsigned(sub),
        "HS512 with the right key": forge(sub, algorithm="HS512"),
        "HS384 with the right key": forge(sub, algorithm="HS384"),
        "expired": forge(sub, iat=now - 3600, exp=now - 60),
        "no exp": jwt.encode({"sub": sub, "iat": now}, harness.SECRET_KEY, algorithm="HS256"),
        "no iat": jwt.encode({"sub": sub, "exp": now + 600}, harness.SECRET_KEY, algorithm="HS256"),
        "no sub": jwt.encode({"iat": now, "exp": now + 600}, harness.SECRET_KEY, algorithm="HS256"),
        "sub an integer": jwt.encode(
            {"sub": account.id, "iat": now, "exp": now + 600}, harness.SECRET_KEY, algorithm="HS256"
        ),
        "sub with a suffix": forge(sub + "x"),
        "sub not decimal": forge("abc"),
        "sub negative": forge("-1"),
        "sub huge": forge("9" * 40),
        "unknown user": forge("2147483647"),
        "iat as a string": forge(sub, iat=str(now)),
        "exp as a string": forge(sub, exp="tomorrow"),
    }
    for why, token in bad.items():
        for what in ("list", "create", "me"):
            assert_invalid_token(call(anon, token, what), why)
    # The good token still works, and so does one forged right (just sub, iat, exp).
    assert_json(call(anon, good), 200)
    assert_json(call(anon, forge(sub)), 200)


@with_auth
def test_deleted_and_inactive_users_tokens_stop_working(
    variant: Variant, users: Users, anon: httpx.Client
) -> None:
    gone, idle = users.fresh(), users.fresh()
    gone_token, idle_token = users.token(gone), users.token(idle)
    assert_json(call(anon, gone_token), 200)
    assert_json(call(anon, idle_token), 200)
    users.db.delete_user(users.variant.framework, gone.id)
    assert_invalid_token(call(anon, gone_token), "deleted user")
    assert_invalid_token(call(anon, forge(str(gone.id))), "deleted user, fresh token")
    users.db.set_user_active(users.variant.framework, idle.id, active=False)
    assert_invalid_token(call(anon, idle_token), "user made inactive")
    assert_bad_credentials(token_request(users.server, idle.username, idle.password))
    # A user created inactive (make createuser with ACTIVE=false) cannot use a token either.
    inactive = users.created(active=False)
    assert_invalid_token(call(anon, forge(str(inactive.id))), "user created inactive")


# --------------------------------------------------------------------------- items by owner


def _find(api: httpx.Client, item_id: int) -> dict[str, Any] | None:
    """The item with this id in the list the client sees (paging through it)."""
    offset = 0
    while True:
        page = assert_json(api.get("/api/items", params={"limit": 100, "offset": offset}), 200)
        for item in page["items"]:
            if item["id"] == item_id:
                return item  # type: ignore[no-any-return]
        offset += 100
        if offset >= page["total"]:
            return None


@with_auth
def test_two_users_see_only_their_own_items(variant: Variant, users: Users) -> None:
    alice, bob = users.fresh(), users.fresh()
    with users.client(alice) as a, users.client(bob) as b:
        mine = create(a, name="shared name", quantity=1)
        assert mine["owner_id"] == alice.id, mine
        theirs = create(b, name="shared name", quantity=2)  # the same name, another owner
        assert theirs["owner_id"] == bob.id, theirs
        for api, own, other in ((a, mine, theirs), (b, theirs, mine)):
            page = assert_json(api.get("/api/items"), 200)
            assert page["total"] == 1 and page["items"] == [own], page
            url = f"/api/items/{other['id']}"
            assert_problem(api.get(url), 404)
            assert_problem(api.put(url, json={"name": "taken over", "quantity": 5}), 404)
            assert_problem(api.patch(url, json={"quantity": 5}), 404)
            assert_problem(api.delete(url), 404)
            assert_json(api.get(f"/api/items/{own['id']}"), 200)
        # Nothing of the other's changed.
        assert assert_json(a.get(f"/api/items/{mine['id']}"), 200) == mine
        assert assert_json(b.get(f"/api/items/{theirs['id']}"), 200) == theirs
        # Unique per owner: the same name again for one owner is a 409.
        assert_problem(a.post("/api/items", json={"name": "shared name", "quantity": 3}), 409)
        other = create(a, name="another name")
        r = a.patch(f"/api/items/{other['id']}", json={"name": "shared name"})
        assert_problem(r, 409)
        # owner_id is read-only.
        r = a.post("/api/items", json={"name": uniq(), "quantity": 1, "owner_id": bob.id})
        assert_problem(r, 422, fields={"owner_id"}, messages={"owner_id": READ_ONLY_FIELD})
        r = a.patch(f"/api/items/{mine['id']}", json={"owner_id": bob.id})
        assert_problem(r, 422, fields={"owner_id"}, messages={"owner_id": READ_ONLY_FIELD})


@with_auth
def test_an_admin_sees_and_changes_every_item(variant: Variant, users: Users) -> None:
    alice = users.fresh()
    admin = users.created(admin=True)
    with users.client(alice) as a, users.client(admin) as root:
        me = assert_json(root.get("/api/users/me"), 200)
        assert me["is_admin"] is True and me["id"] == admin.id, me
        hers = create(a, quantity=4)
        seen = _find(root, hers["id"])
        assert seen == hers, f"the admin's list lacks another user's item: {seen}"
        url = f"/api/items/{hers['id']}"
        assert assert_json(root.get(url), 200) == hers
        patched = assert_item(assert_json(root.patch(url, json={"quantity": 9}), 200), quantity=9)
        assert patched["owner_id"] == alice.id, f"the admin's change took the item: {patched}"
        replaced = assert_json(root.put(url, json={"name": hers["name"], "quantity": 8}), 200)
        assert replaced["owner_id"] == alice.id, replaced
        assert assert_json(a.get(url), 200)["quantity"] == 8
        own = create(root)
        assert own["owner_id"] == admin.id, f"an admin's item is the admin's: {own}"
        assert_problem(a.get(f"/api/items/{own['id']}"), 404)
        assert root.delete(url).status_code == 204
        assert_problem(a.get(url), 404)
        assert assert_json(a.get("/api/items"), 200)["total"] == 0


# --------------------------------------------------------------------------- throttling


@with_auth
def test_sign_in_throttle_across_workers(variant: Variant, users: Users) -> None:
    """5 failures for a username (in any case), then 429 with Retry-After, the right
    password too; each request on a new connection, so both workers answer some."""
    account = users.fresh()
    spellings = [account.username, account.username.upper(), account.username.capitalize()]
    for attempt in range(LOGIN_FAILURE_LIMIT):
        username = spellings[attempt % len(spellings)]
        assert_bad_credentials(token_request(users.server, username, f"wrong-{attempt}-password"))
    assert_throttled(token_request(users.server, account.username, "wrong-again-password"))
    retry = assert_throttled(token_request(users.server, account.username.upper(), "x" * 12))
    assert retry > LOGIN_WINDOW_SECONDS - 120, f"Retry-After {retry}: the window just started"
    # The right password inside the window: 429 too, and no token.
    assert_throttled(token_request(users.server, account.username, account.password))
    # Another user is not affected, and the throttled one's earlier tokens still work.
    other = users.fresh()
    assert_token(
        token_request(users.server, other.username, other.password), other, harness.TOKEN_MINUTES
    )


@with_auth
def test_unknown_usernames_are_throttled_alike(variant: Variant, users: Users) -> None:
    nobody = _name("ghost")
    for attempt in range(LOGIN_FAILURE_LIMIT):
        username = nobody.upper() if attempt % 2 else nobody
        assert_bad_credentials(token_request(users.server, username, f"guess-{attempt}-password"))
    assert_throttled(token_request(users.server, nobody, "guess-again-password"))


@with_auth
def test_unknown_user_and_wrong_password_take_as_long(variant: Variant, users: Users) -> None:
    """Interleaved samples of both refusals on one kept-alive connection; their medians
    within a factor of 3 of each other (a missing dummy hash makes the unknown user's
    refusal many times faster). Each known user gets fewer failures than the limit."""
    known = [users.fresh() for _ in range(3)]
    per_user = LOGIN_FAILURE_LIMIT - 1
    unknown_times: list[float] = []
    wrong_times: list[float] = []

    def timed(client: httpx.Client, username: str) -> float:
        started = time.perf_counter()
        r = client.post(TOKEN_PATH, data={"username": username, "password": "not-the-password"})
        elapsed = time.perf_counter() - started
        assert_bad_credentials(r)
        return elapsed

    with users.server.client(authenticated=False) as client:
        timed(client, _name("warm"))  # warm both paths up, unmeasured
        for account in known:
            for _ in range(per_user):
                unknown_times.append(timed(client, _name("ghost")))
                wrong_times.append(timed(client, account.username))
    unknown, wrong = statistics.median(unknown_times), statistics.median(wrong_times)
    ratio = unknown / wrong
    assert 1 / 3 <= ratio <= 3, (
        f"an unknown user's refusal takes {unknown * 1000:.1f} ms (median), a wrong "
        f"password's {wrong * 1000:.1f} ms: the difference tells which usernames exist\n"
        f"unknown: {[round(t * 1000, 1) for t in unknown_times]}\n"
        f"wrong:   {[round(t * 1000, 1) for t in wrong_times]}"
    )


# --------------------------------------------------------------------------- passwords


@with_auth
def test_password_change_revokes_earlier_tokens(
    variant: Variant, users: Users, anon: httpx.Client
) -> None:
    account = users.fresh()
    old = users.token(account)
    # A change refuses tokens issued before its whole second: make that a later one.
    issued = jwt.decode(old, harness.SECRET_KEY, algorithms=["HS256"])["iat"]
    time.sleep(max(0.0, issued + 1.05 - time.time()))
    with users.client(token=old) as api:
        r = api.post(
            "/api/users/me/password",
            json={"current_password": "not the password!", "new_password": "x" * 20},
        )
        body = assert_problem(r, 400, detail=CURRENT_PASSWORD_INCORRECT)
        assert body.get("errors") == [
            {"field": "current_password", "message": WRONG_CURRENT_PASSWORD}
        ], describe(r)
        for bad in ("y" * 11, "y" * 129):
            r = api.post(
                "/api/users/me/password",
                json={"current_password": account.password, "new_password": bad},
            )
            assert_problem(
                r, 422, fields={"new_password"}, messages={"new_password": PASSWORD_LENGTH}
            )
        new_password = f"new-{uuid.uuid4().hex}"
        r = api.post(
            "/api/users/me/password",
            json={"current_password": account.password, "new_password": new_password},
        )
        assert r.status_code == 204 and not r.content, describe(r)
        check_common(r)
    assert_invalid_token(call(anon, old), "before the change")
    # A token issued before it, forged with a valid signature: refused as well.
    assert_invalid_token(call(anon, forge(str(account.id), iat=issued)), "iat before the change")
    assert_bad_credentials(token_request(users.server, account.username, account.password))
    account.password = new_password
    fresh = users.token(account)  # works at once, in the second of the change
    assert_json(call(anon, fresh), 200)


# --------------------------------------------------------------------------- sign-up


@with_auth
def test_sign_up_is_closed_by_default(variant: Variant, anon: httpx.Client) -> None:
    r = _sign_up(anon, _name(), "a good long password")
    assert_problem(r, 403, detail=SIGN_UP_CLOSED)


@with_auth
def test_sign_up_when_open(variant: Variant, users: Users) -> None:
    with users.signup.client(authenticated=False) as c:
        username = _name("Mixed")
        r = _sign_up(c, username, "p" * 12)
        body = assert_json(r, 201)
        assert set(body) == USER_KEYS, body
        assert body["username"] == username and body["is_admin"] is False, body
        assert r.headers.get("location") == f"/api/users/{body['id']}", describe(r)
        parse_ts(body["created_at"])
        # The same username in another case: 409.
        for same in (username.upper(), username.lower()):
            assert_problem(_sign_up(c, same, "q" * 20), 409, detail=DUPLICATE_USERNAME)
        # 12 and 128 characters are fine; 11 and 129 are a 422 naming password.
        assert_json(_sign_up(c, _name(), "p" * 128), 201)
        for bad in ("p" * 11, "p" * 129):
            r = _sign_up(c, _name(), bad)
            assert_problem(r, 422, fields={"password"}, messages={"password": PASSWORD_LENGTH})
        for bad_name in ("ab", "has space", "x" * 151, "semi;colon"):
            r = _sign_up(c, bad_name, "a good long password")
            assert_problem(r, 422, fields={"username"}, messages={"username": USERNAME_RULE})
        r = c.post("/api/users", json={"username": _name(), "password": "p" * 12, "is_admin": True})
        assert_problem(r, 422, fields={"is_admin"})
        # The new user signs in on the main server.
    account = Account(body["id"], username, "p" * 12)
    assert_token(
        token_request(users.server, username.lower(), account.password), account,
        harness.TOKEN_MINUTES,
    )  # fmt: skip


# --------------------------------------------------------------------------- public paths


@with_auth
def test_public_paths_need_no_token(variant: Variant, anon: httpx.Client) -> None:
    paths = ["/health", "/ready", "/openapi.json", "/docs"]
    if variant.observability:
        paths.append("/metrics")
    for path in paths:
        r = anon.get(path)
        assert r.status_code == 200, f"{path} without a token" + describe(r)


def _effective_security(spec: dict[str, Any], op: dict[str, Any]) -> Any:
    return op.get("security", spec.get("security"))


@with_auth
def test_openapi_declares_the_password_flow(variant: Variant, anon: httpx.Client) -> None:
    spec = assert_json(anon.get("/openapi.json"), 200)
    schemes = spec.get("components", {}).get("securitySchemes", {})
    assert schemes.get(SCHEME) == SECURITY_SCHEME, schemes
    protected_prefixes = ("/api/items", "/api/reports", "/api/users/me")
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            where = f"{method.upper()} {path}"
            security = _effective_security(spec, op)
            if path.startswith(protected_prefixes):
                assert security == [{SCHEME: []}], f"{where}: security {security}"
                assert "401" in op.get("responses", {}), f"{where}: no 401 documented"
            else:
                assert not security, f"{where} is public, yet declares security {security}"
    token_op = spec["paths"][TOKEN_PATH]["post"]
    form = token_op["requestBody"]["content"][FORM]["schema"]
    while "$ref" in form:
        node: Any = spec
        for part in form["$ref"][2:].split("/"):
            node = node[part]
        form = node
    assert {"username", "password", "grant_type", "scope", "client_id", "client_secret"} <= set(
        form.get("properties", {})
    ), form
    assert {"username", "password"} <= set(form.get("required", [])), form
    assert "application/json" not in token_op["requestBody"]["content"], token_op["requestBody"]
