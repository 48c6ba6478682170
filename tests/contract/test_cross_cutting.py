"""Request ids, nosniff, request logs, CORS, .env, SECRET_KEY, SIGTERM, concurrency.

docs/CONTRACT.md sections 2 and 5.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness
import httpx
import pytest

from contract.helpers import (
    VISIBLE_ASCII,
    Database,
    assert_item,
    assert_json,
    assert_problem,
    create,
    describe,
    request_log_entries,
    uniq,
    wait_for_log,
)

# --------------------------------------------------------------------------- X-Request-ID

VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))


@pytest.mark.parametrize(
    "rid",
    ["abc-123", VISIBLE[:128], VISIBLE[-100:], "x" * 128, "a"],
    ids=["simple", "visible-128", "visible-tail", "128-chars", "one-char"],
)
def test_request_id_is_echoed(api: httpx.Client, rid: str) -> None:
    for r in (
        api.get("/health", headers={"X-Request-ID": rid}),
        api.get("/api/items/0", headers={"X-Request-ID": rid}),
        api.post("/api/items", json={}, headers={"X-Request-ID": rid}),
    ):
        assert r.headers.get("x-request-id") == rid, describe(r)


@pytest.mark.parametrize(
    "rid",
    [
        "x" * 129,
        "has space",
        "tab\there",
        b"caf\xc3\xa9",
        "y" * 1000,
    ],
    ids=["129-chars", "space", "tab", "non-ascii", "1000-chars"],
)
def test_bad_request_id_is_replaced(api: httpx.Client, rid: str | bytes) -> None:
    r = api.get("/health", headers={"X-Request-ID": rid})
    got = r.headers.get("x-request-id")
    sent = rid.decode("latin-1") if isinstance(rid, bytes) else rid
    assert got and got != sent and VISIBLE_ASCII.match(got), describe(r)


def test_request_id_is_generated(api: httpx.Client) -> None:
    seen = set()
    for path in ("/health", "/ready", "/api/items", "/api/items/0", "/nope"):
        r = api.get(path)
        rid = r.headers.get("x-request-id")
        assert rid and VISIBLE_ASCII.match(rid), describe(r)
        seen.add(rid)
    assert len(seen) == 5, f"generated request ids must differ: {seen}"


def test_nosniff_everywhere(api: httpx.Client) -> None:
    item = create(api)
    responses = [
        api.get("/health"),
        api.get("/ready"),
        api.get("/api/items"),
        api.get(f"/api/items/{item['id']}"),
        api.patch(f"/api/items/{item['id']}", json={"quantity": 2}),
        api.delete(f"/api/items/{item['id']}"),
        api.get(f"/api/items/{item['id']}"),
        api.post("/api/items", content=b"x", headers={"Content-Type": "text/plain"}),
        api.post("/api/items", content=b"{", headers={"Content-Type": "application/json"}),
        api.delete("/api/items"),
        api.get("/openapi.json"),
        api.get("/docs"),
        api.get("/nope"),
    ]
    for r in responses:
        assert r.headers.get("x-content-type-options") == "nosniff", describe(r)
        assert r.headers.get("x-request-id"), describe(r)


# --------------------------------------------------------------------------- request log


def test_one_json_log_line_per_request(api: httpx.Client, server: harness.Server) -> None:
    """Production logs: one JSON object per request, with the decided fields."""
    rid = uniq("rid-log")
    path = f"/api/items/{2_000_000_000 + secrets.randbelow(100_000_000)}"
    r = api.get(path, headers={"X-Request-ID": rid})
    assert_problem(r, 404)
    r2 = api.post("/api/items", json={"name": uniq(), "quantity": 1}, headers={"X-Request-ID": rid})
    assert_json(r2, 201)

    log = wait_for_log(server.log, lambda text: len(request_log_entries(text, rid)) >= 2)
    entries = request_log_entries(log, rid)
    assert len(entries) == 2, f"expected 2 request log lines for {rid}, got {entries}"
    get, post = sorted(entries, key=lambda e: e["method"])
    for entry, method, want_path, status in (
        (get, "GET", path, 404),
        (post, "POST", "/api/items", 201),
    ):
        assert "_text" not in entry, f"production log lines must be JSON: {entry['_line']}"
        for key in ("level", "logger", "message", "time"):
            assert key in entry, f"JSON log line lacks {key!r}: {entry['_line']}"
        assert entry["logger"] == "contract_api.access", entry["_line"]
        assert entry["method"] == method, entry["_line"]
        assert entry["path"] == want_path, entry["_line"]
        assert entry["status"] == status, entry["_line"]
        assert isinstance(entry["duration_ms"], int | float), entry["_line"]
        assert not isinstance(entry["duration_ms"], bool) and entry["duration_ms"] >= 0
    # one line per request: nothing else (e.g. a server access log) mentions the path
    mentions = [line for line in log.splitlines() if path in line]
    assert len(mentions) == 1, "one log line per request (server access logs off):\n" + "\n".join(
        mentions
    )


# --------------------------------------------------------------------------- CORS and .env


ORIGIN = "https://app.example"
OTHER_ORIGIN = "https://admin.example"
EVIL = "https://evil.example"


def _preflight(api: httpx.Client, origin: str) -> httpx.Response:
    return api.options(
        "/api/items",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


def test_cors_closed_by_default(api: httpx.Client) -> None:
    r = api.get("/api/items", headers={"Origin": EVIL})
    assert_json(r, 200)
    assert "access-control-allow-origin" not in r.headers, describe(r)
    r = _preflight(api, EVIL)
    assert "access-control-allow-origin" not in r.headers, describe(r)
    assert "access-control-allow-methods" not in r.headers, describe(r)


def test_cors_origins_and_dotenv(
    project: Path, start_server: Callable[..., harness.Server]
) -> None:
    """CORS_ORIGINS opens CORS to the listed origins only; a .env file is read.

    ENVIRONMENT=production and SECRET_KEY come only from .env here: the server
    starts (so SECRET_KEY was read) and logs JSON lines (so ENVIRONMENT was read).
    """
    dotenv = project / ".env"
    assert not dotenv.exists(), f"{dotenv} exists in a fresh render"
    dotenv.write_text(f"ENVIRONMENT=production\nSECRET_KEY={secrets.token_urlsafe(32)}\n")
    # .env stays until the server is gone: every worker process reads it when it starts.
    try:
        _check_cors_and_dotenv(start_server)
    finally:
        dotenv.unlink()


def _check_cors_and_dotenv(start_server: Callable[..., harness.Server]) -> None:
    srv = start_server(
        env={
            "CORS_ORIGINS": f"{ORIGIN},{OTHER_ORIGIN}",
            "ENVIRONMENT": None,
            "SECRET_KEY": None,
        },
        name="cors",
    )
    try:
        _check_cors(srv)
    finally:
        srv.stop()


def _check_cors(srv: harness.Server) -> None:
    with srv.client() as api:
        for origin in (ORIGIN, OTHER_ORIGIN):
            r = api.get("/api/items", headers={"Origin": origin})
            assert_json(r, 200)
            assert r.headers.get("access-control-allow-origin") == origin, describe(r)

            r = _preflight(api, origin)
            assert r.status_code in {200, 204}, describe(r)
            assert r.headers.get("access-control-allow-origin") == origin, describe(r)
            methods = r.headers.get("access-control-allow-methods", "")
            assert "POST" in methods.upper() or methods.strip() == "*", describe(r)
            allowed = r.headers.get("access-control-allow-headers", "").lower()
            assert "content-type" in allowed or allowed.strip() == "*", describe(r)

        r = api.post("/api/items", json={"name": uniq(), "quantity": 1}, headers={"Origin": ORIGIN})
        assert_json(r, 201)
        assert r.headers.get("access-control-allow-origin") == ORIGIN, describe(r)

        r = api.get("/api/items", headers={"Origin": EVIL})
        assert "access-control-allow-origin" not in r.headers, describe(r)
        r = _preflight(api, EVIL)
        assert r.headers.get("access-control-allow-origin") in (None, ""), describe(r)

        rid = uniq("rid-dotenv")
        assert_json(api.get("/health", headers={"X-Request-ID": rid}), 200)
    log = wait_for_log(srv.log, lambda text: bool(request_log_entries(text, rid)))
    entries = request_log_entries(log, rid)
    assert entries and "_text" not in entries[0], (
        "ENVIRONMENT=production in .env was not applied (request log is not JSON):\n" + log[-3000:]
    )


def test_env_example_lists_the_configuration(project: Path) -> None:
    text = (project / ".env.example").read_text()
    keys = {
        line.split("=", 1)[0].strip().removeprefix("export ").strip()
        for line in text.splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    expected = {
        "DATABASE_URL",
        "HOST",
        "PORT",
        "WEB_CONCURRENCY",
        "ENVIRONMENT",
        "SECRET_KEY",
        "LOG_LEVEL",
        "CORS_ORIGINS",
    }
    assert expected <= keys, f".env.example lacks {sorted(expected - keys)}"


# --------------------------------------------------------------------------- SECRET_KEY

SECRET_ERROR = "error: SECRET_KEY must be set to a unique value when ENVIRONMENT=production"


@pytest.mark.parametrize("secret", [None, ""], ids=["unset", "empty"])
def test_production_requires_secret_key(
    project: Path, databases: Callable[[], Database], secret: str | None
) -> None:
    env: dict[str, str | None] = {
        "HOST": "127.0.0.1",
        "PORT": str(harness.free_port()),
        "WEB_CONCURRENCY": "2",
        "DATABASE_URL": databases().url,
        "ENVIRONMENT": "production",
        "SECRET_KEY": secret,
    }
    started = time.monotonic()
    proc = harness.run(["make", "serve"], cwd=project, env=env, timeout=60)
    elapsed = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode != 0, f"`make serve` without SECRET_KEY exited 0:\n{out}"
    assert SECRET_ERROR in out.splitlines(), f"missing the one-line error {SECRET_ERROR!r}:\n{out}"
    assert "Traceback" not in out, f"a traceback instead of a one-line error:\n{out}"
    assert elapsed < 60


# --------------------------------------------------------------------------- SIGTERM


def test_sigterm_lets_the_request_in_flight_finish(
    start_server: Callable[..., harness.Server],
) -> None:
    srv = start_server(name="sigterm")
    auth = "".join(f"{k}: {v}\r\n" for k, v in srv.auth_headers().items())
    name = uniq("inflight")
    body = json.dumps({"name": name, "quantity": 3}).encode()
    head = (
        f"POST /api/items HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{auth}Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(head + body[:10])
        time.sleep(2.0)  # the server has the request line and headers: it is in flight
        srv.terminate()
        time.sleep(1.0)
        sock.sendall(body[10:])
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    status_line = raw.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 201"), f"in-flight request did not finish:\n{raw!r}"
    payload = raw.split(b"\r\n\r\n", 1)[1]
    if b"transfer-encoding: chunked" in raw.split(b"\r\n\r\n", 1)[0].lower():
        payload = _dechunk(payload)
    assert_item(json.loads(payload), name=name, quantity=3)

    try:
        code = srv.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not exit within 30s of SIGTERM; log:\n{srv.log()[-4000:]}")
    srv.stop()
    assert code == 0, f"`make serve` exited {code} after SIGTERM; log:\n{srv.log()[-4000:]}"
    assert not srv.leftovers, f"processes left after the server exited: {srv.leftovers}"


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, data = data.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


# --------------------------------------------------------------------------- concurrency


def test_200_concurrent_creates(api: httpx.Client, server: harness.Server) -> None:
    before = assert_json(api.get("/api/items"), 200)["total"]
    prefix = uniq("burst")
    names = [f"{prefix}-{i}" for i in range(200)]
    headers = server.auth_headers()

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=server.base_url, limits=limits, timeout=120, headers=headers
        ) as client:
            return await asyncio.gather(
                *(client.post("/api/items", json={"name": n, "quantity": 1}) for n in names)
            )

    # In a thread of its own: the browser tests' Playwright keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        responses = pool.submit(asyncio.run, burst()).result()
    bad = [r for r in responses if r.status_code != 201]
    assert not bad, f"{len(bad)} of 200 concurrent creates failed, e.g.:" + describe(bad[0])
    items = [assert_item(r.json()) for r in responses]
    assert sorted(i["name"] for i in items) == sorted(names)
    ids = [i["id"] for i in items]
    assert len(set(ids)) == 200, "ids must be distinct"
    after = assert_json(api.get("/api/items"), 200)["total"]
    assert after == before + 200, f"total went from {before} to {after}, expected +200"
    for item in items[::20]:
        assert assert_json(api.get(f"/api/items/{item['id']}"), 200)["name"] == item["name"]
