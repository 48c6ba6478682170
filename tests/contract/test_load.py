"""Sustained load and graceful shutdown under load (issue 9: starters that hold under load).

- ``test_mixed_load_loses_nothing``: wrk drives the variant's real ``make serve``
  (production settings, 2 workers, a fresh database, not the main server's) for ``CONTRACT_LOAD_SECONDS``
  (default 30 for each framework's default variant, 10 for its other variants: the
  long run finds what builds up, the short ones each option's code path) at ``CONTRACT_LOAD_CONNECTIONS`` (default 64) connections with a mix
  of creates, list pages, reads and patches (``load_mix.lua``). Every request must
  succeed (no socket error, no 5xx, no other unexpected status) and afterwards the
  number of items equals the number of creates that were committed.
- ``test_sigterm_under_concurrent_requests``: 32 clients create items in a loop, then
  each holds its next create half-sent while the server gets SIGTERM (the concurrent
  version of test_cross_cutting's single in-flight request). Every request the server
  had accepted gets a complete 201, no response is cut short, nothing is committed
  without its response, and the server exits 0.

Needs wrk (Debian's package; ``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import pytest
from matrix import Variant, default_variant

from contract.helpers import Database, assert_item, assert_json, describe

LOAD_SECONDS = os.environ.get("CONTRACT_LOAD_SECONDS")
LOAD_CONNECTIONS = int(os.environ.get("CONTRACT_LOAD_CONNECTIONS", "64"))
# wrk's own deadline per request (its default is 2 s). With 64 connections queued on
# two workers of a shared 2-core machine, a response can take seconds without anything
# being wrong, and wrk would count it as a timeout. 10 s is the starters' own worst
# case (SQLite busy_timeout, pool and connect timeouts): slower than that is a stuck
# request, which a timeout here reports.
WRK_TIMEOUT_SECONDS = 10
LOAD_SCRIPT = Path(__file__).with_name("load_mix.lua")
EXPECTED = {"create": 201, "list": 200, "read": 200, "patch": 200}


# --------------------------------------------------------------------------- server logs


def _log_statuses(log: str) -> Counter[int]:
    """Statuses of the request log lines (JSON lines in production)."""
    statuses: Counter[int] = Counter()
    for line in log.splitlines():
        start = line.find("{")
        if start < 0 or '"status"' not in line:
            continue
        try:
            entry = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("status"), int):
            statuses[entry["status"]] += 1
    return statuses


def _log_excerpt(log: str, limit: int = 60) -> str:
    """What the server said besides successful request lines: warnings, errors,
    tracebacks, 4xx/5xx request lines (the last ``limit`` of them), then its last lines."""
    lines = log.splitlines()
    notable = []
    for line in lines:
        start = line.find("{")
        if start >= 0:
            try:
                entry = json.loads(line[start:])
            except json.JSONDecodeError:
                entry = None
            if (
                isinstance(entry, dict)
                and isinstance(entry.get("status"), int)
                and entry["status"] < 400
                and entry.get("level") in (None, "INFO", "info")
            ):
                continue
        notable.append(line)
    out = "\n".join(notable[-limit:]) or "(nothing but successful request lines)"
    return f"{out}\n... last lines:\n" + "\n".join(lines[-5:])


# --------------------------------------------------------------------------- wrk


@dataclass
class LoadReport:
    raw: dict[str, Any]
    stdout: str

    @property
    def errors(self) -> dict[str, int]:
        return dict(self.raw["summary"]["errors"])

    @property
    def statuses(self) -> dict[str, dict[int, int]]:
        return {
            kind: {int(status): n for status, n in counts.items()}
            for kind, counts in self.raw["statuses"].items()
        }

    def count(self, kind: str, status: int) -> int:
        return self.statuses.get(kind, {}).get(status, 0)

    @property
    def pending(self) -> list[str]:
        return list(self.raw["pending"])

    @property
    def rps(self) -> float:
        summary = self.raw["summary"]
        return float(summary["requests"]) / (summary["duration_us"] / 1e6)

    def describe(self) -> str:
        s = self.raw["summary"]
        lat = self.raw["latency"]
        lines = [
            (
                f"wrk: {s['requests']} responses in {s['duration_us'] / 1e6:.1f}s "
                f"({self.rps:.0f}/s), latency p50 {lat['p50_us'] / 1000:.0f} ms, "
                f"p99 {lat['p99_us'] / 1000:.0f} ms, max {lat['max_us'] / 1000:.0f} ms"
            ),
            f"socket errors: {self.errors}",
            f"sent per kind: {self.raw['sent']}",
            f"responses per kind and status: {self.statuses}",
            f"creates unanswered when wrk stopped: {len(self.pending)}",
        ]
        for key, text in sorted(self.raw["samples"].items()):
            lines.append(f"first {key}: {text}")
        return "\n".join(lines)


def run_wrk(
    base_url: str, prefix: str, seconds: int, connections: int, token: str = ""
) -> LoadReport:
    wrk = shutil.which("wrk")
    assert wrk, "wrk is not installed (Debian: apt-get install wrk; .ci/run installs it)"
    threads = min(2, connections)
    args = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        f"{WRK_TIMEOUT_SECONDS}s",
        "-s",
        str(LOAD_SCRIPT),
        base_url,
        "--",
        prefix,
        "keep",
        token,
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120, check=False)
    match = re.search(r"^LOAD_JSON (\{.*\})$", proc.stdout, re.MULTILINE)
    assert proc.returncode == 0 and match, (
        f"`{' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    return LoadReport(json.loads(match.group(1)), proc.stdout)


# --------------------------------------------------------------------------- the load test


@dataclass
class LoadServer:
    server: harness.Server
    database: Database


@pytest.fixture(scope="module")
def load_server(
    variant: Variant,
    project: Path,
    databases: Callable[[], Database],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LoadServer]:
    """A server of its own (production settings, a fresh database) for this module's two
    tests: the load test, then the SIGTERM test, which stops it. One server for both
    saves a start per variant; each test stands on its own when run alone."""
    db = databases()
    logs = harness.variant_tmp(tmp_path_factory, variant, "load")
    with harness.Server(project, database_url=db.url, log_path=logs / "server.log") as srv:
        yield LoadServer(srv, db)


def load_seconds(variant: Variant) -> int:
    if LOAD_SECONDS:
        return int(LOAD_SECONDS)
    return 30 if variant == default_variant(variant.framework) else 10


def test_mixed_load_loses_nothing(variant: Variant, load_server: LoadServer) -> None:
    srv = load_server.server
    with srv.client() as api:
        before = assert_json(api.get("/api/items", params={"limit": 1}), 200)["total"]
    prefix = f"load-{uuid.uuid4().hex[:8]}"
    token = srv.token() if srv.auth else ""
    report = run_wrk(srv.base_url, prefix, load_seconds(variant), LOAD_CONNECTIONS, token)
    print(f"\n{variant.id}: {report.describe()}")

    def what() -> str:
        return f"\n{report.describe()}\nserver log:\n{_log_excerpt(srv.log())}"

    socket_errors = {k: v for k, v in report.errors.items() if k != "status" and v}
    assert not socket_errors, f"{variant.id}: socket errors under load: {socket_errors}" + what()
    unexpected = {
        kind: {s: n for s, n in counts.items() if s != EXPECTED.get(kind)}
        for kind, counts in report.statuses.items()
    }
    unexpected = {kind: counts for kind, counts in unexpected.items() if counts}
    assert not unexpected, (
        f"{variant.id}: unexpected statuses under load (kind: {{status: count}}): {unexpected}"
        + what()
    )
    missing = [kind for kind, status in EXPECTED.items() if report.count(kind, status) == 0]
    assert not missing, f"{variant.id}: no successful request of kind {missing}" + what()
    answered = sum(sum(c.values()) for c in report.statuses.values())
    assert answered == report.raw["summary"]["requests"], (
        f"{variant.id}: the script counted {answered} responses, wrk {report.raw['summary']}"
        + what()
    )
    assert len(report.pending) == report.raw["sent"]["create"] - report.count("create", 201), (
        f"{variant.id}: creates sent, answered and unanswered do not add up" + what()
    )

    with srv.client() as api:
        # Creates still in flight when wrk stopped may or may not have been committed
        # (or still be queued). Posting each name again settles it: afterwards the name
        # exists exactly once either way (201 now, or 409 because it was committed).
        for name in report.pending:
            r = api.post("/api/items", json={"name": name, "quantity": 1})
            assert r.status_code in (201, 409), (
                f"{variant.id}: re-posting an unanswered create" + describe(r) + what()
            )
        total = assert_json(api.get("/api/items", params={"limit": 1}), 200)["total"]
    created = report.count("create", 201)
    expected = before + created + len(report.pending)
    assert total == expected, (
        f"{variant.id}: {total} items after the load, {before} before it; {created} creates "
        f"answered 201 and {len(report.pending)} were unanswered (each now exists once): "
        f"{'lost' if total < expected else 'extra'} writes" + what()
    )

    log = srv.log()
    server_errors = {s: n for s, n in _log_statuses(log).items() if s >= 500}
    assert not server_errors and "Traceback" not in log, (
        f"{variant.id}: the server logged errors under load: statuses {server_errors}" + what()
    )


# --------------------------------------------------------------------------- SIGTERM


SHUTDOWN_CLIENTS = 32
WEB_CONCURRENCY = 2  # harness.Server's
# Requests in flight at SIGTERM that the server has accepted (read their headers) and so
# must answer. uvicorn (FastAPI) accepts every connection at once in its event loop;
# gunicorn's sync workers (the others) each hold one request, the rest wait in the
# listen backlog, which the kernel resets when the server closes it.
ACCEPTED_AT_ONCE = {"fastapi": SHUTDOWN_CLIENTS}


@dataclass
class Attempt:
    name: str
    held: bool  # sent in two parts around the SIGTERM
    outcome: str = ""  # complete | dropped | truncated | refused
    status: int | None = None
    body: bytes = b""
    raw: bytes = b""
    error: str = ""


@dataclass
class ShutdownRun:
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold: threading.Event = field(default_factory=threading.Event)  # next request: held
    release: threading.Event = field(default_factory=threading.Event)  # send the rest
    holding: int = 0

    def add(self, attempt: Attempt) -> None:
        with self.lock:
            self.attempts.append(attempt)

    def count(self, outcome: str) -> int:
        with self.lock:
            return sum(1 for a in self.attempts if a.outcome == outcome)


def _parse_response(raw: bytes) -> tuple[int, bytes] | None:
    """(status, body) of one complete HTTP/1.1 response read to EOF, else None."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        return None
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        headers[key.strip().lower()] = value.strip()
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        return (int(m.group(1)), rest[:length]) if len(rest) == length else None
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while True:
            size_line, sep, rest = rest.partition(b"\r\n")
            if not sep:
                return None
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                return (int(m.group(1)), body) if rest.startswith(b"\r\n") else None
            if len(rest) < size + 2:
                return None
            body, rest = body + rest[:size], rest[size + 2 :]
    return int(m.group(1)), rest  # no length: the body ends at EOF


def _create(port: int, name: str, run: ShutdownRun, *, held: bool, auth: str = "") -> Attempt:
    """POST one item over a raw connection (Connection: close) and read to EOF.

    ``auth``: extra header lines (the bearer token with needs_auth).
    ``held``: send the headers and the start of the body, then wait for
    ``run.release`` before sending the rest: the request is in flight meanwhile.
    """
    attempt = Attempt(name=name, held=held)
    body = json.dumps({"name": name, "quantity": 7}).encode()
    head = (
        f"POST /api/items HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-ID: {name}\r\n{auth}Connection: close\r\n\r\n"
    ).encode()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    except ConnectionRefusedError:
        attempt.outcome = "refused"
        return attempt
    chunks: list[bytes] = []
    try:
        with sock:
            if held:
                sock.sendall(head + body[:8])
                with run.lock:
                    run.holding += 1
                run.release.wait(timeout=120)
                sock.sendall(body[8:])
            else:
                sock.sendall(head + body)
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError as exc:  # reset, broken pipe, timeout
        attempt.error = f"{type(exc).__name__}: {exc}"
    attempt.raw = b"".join(chunks)
    parsed = _parse_response(attempt.raw)
    if not attempt.raw:
        attempt.outcome = "dropped"
    elif parsed is None or attempt.error:
        attempt.outcome = "truncated"
    else:
        attempt.outcome = "complete"
        attempt.status, attempt.body = parsed
    return attempt


def _client(port: int, prefix: str, index: int, run: ShutdownRun, auth: str) -> None:
    """Creates in a loop until ``run.hold``; then one held create."""
    n = 0
    while not run.hold.is_set():
        n += 1
        run.add(_create(port, f"{prefix}-c{index}-{n}", run, held=False, auth=auth))
    run.add(_create(port, f"{prefix}-c{index}-held", run, held=True, auth=auth))


def _committed_names(db: Database, prefix: str) -> list[str]:
    table = db.items_table()
    if db.kind == "sqlite":
        with db._sqlite() as con:
            rows = con.execute(f'SELECT name FROM "{table}"').fetchall()
        names = [r[0] for r in rows]
    else:
        names = db.psql(f'SELECT name FROM "{table}"').splitlines()
    return [n for n in names if n.startswith(prefix)]


def _wait_until(ok: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ok() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_sigterm_under_concurrent_requests(variant: Variant, load_server: LoadServer) -> None:
    """32 clients create items in a loop; then each sends its next create in two parts,
    SIGTERM comes between them, and the rest follows a second later. (After the load
    test, on its server: the shutdown of a server that has been under load.)"""
    srv, db = load_server.server, load_server.database
    prefix = f"stop-{uuid.uuid4().hex[:8]}"
    run = ShutdownRun()
    auth = "".join(f"{k}: {v}\r\n" for k, v in srv.auth_headers().items())
    clients = [
        threading.Thread(target=_client, args=(srv.port, prefix, i, run, auth), daemon=True)
        for i in range(SHUTDOWN_CLIENTS)
    ]
    for t in clients:
        t.start()
    try:
        # Busy first (pools, caches, every worker serving), then 32 requests held open.
        _wait_until(lambda: run.count("complete") >= SHUTDOWN_CLIENTS, 60)
        run.hold.set()
        _wait_until(lambda: run.holding == SHUTDOWN_CLIENTS, 60)
        time.sleep(0.5)  # the server has read the headers of what it accepted
        srv.terminate()
        time.sleep(1.0)
    finally:
        run.release.set()
    for t in clients:
        t.join(timeout=90)
    try:
        code: int | None = srv.wait(timeout=60)
    except subprocess.TimeoutExpired:
        code = None
    srv.stop()

    attempts = list(run.attempts)
    held = [a for a in attempts if a.held]
    outcomes = Counter(a.outcome for a in attempts)
    held_outcomes = Counter(a.outcome for a in held)
    statuses = Counter(a.status for a in attempts if a.outcome == "complete")
    drops = Counter(a.error.split(":")[0] or "EOF" for a in attempts if a.outcome == "dropped")

    def what() -> str:
        return (
            f"\n{len(attempts)} requests: {dict(outcomes)}; statuses {dict(statuses)}; "
            f"held over SIGTERM: {dict(held_outcomes)}; drops: {dict(drops)}\n"
            f"server log:\n{_log_excerpt(srv.log())}"
        )

    print(f"\n{variant.id}: {what().splitlines()[1]}")
    assert len(held) == SHUTDOWN_CLIENTS and run.holding == SHUTDOWN_CLIENTS, (
        f"{variant.id}: only {run.holding} of {SHUTDOWN_CLIENTS} clients got to hold a "
        "request open before SIGTERM" + what()
    )
    assert code is not None, f"{variant.id}: the server did not exit within 60s of SIGTERM" + what()
    assert code == 0, f"{variant.id}: `make serve` exited {code} after SIGTERM" + what()
    assert not srv.leftovers, f"processes left after the server exited: {srv.leftovers}"
    truncated = [a for a in attempts if a.outcome == "truncated"]
    assert not truncated, (
        f"{variant.id}: {len(truncated)} responses cut short by the shutdown, e.g. "
        f"{truncated[0].raw[:500]!r} ({truncated[0].error})" + what()
    )
    refused = [a for a in attempts if a.outcome == "refused"]
    assert not refused, f"{variant.id}: {len(refused)} connections refused before SIGTERM" + what()
    bad = [a for a in attempts if a.outcome == "complete" and a.status != 201]
    assert not bad, (
        f"{variant.id}: {len(bad)} requests answered other than 201 around SIGTERM, e.g. "
        f"{bad[0].status} {bad[0].body[:500]!r}" + what()
    )
    for a in attempts:
        if a.outcome == "complete":
            assert_item(json.loads(a.body), name=a.name, quantity=7)
    unheld_drops = [a for a in attempts if a.outcome == "dropped" and not a.held]
    assert not unheld_drops, (
        f"{variant.id}: {len(unheld_drops)} requests sent before SIGTERM got no response" + what()
    )

    answered = sorted(a.name for a in attempts if a.outcome == "complete")
    committed = sorted(_committed_names(db, prefix))
    dropped = {a.name for a in attempts if a.outcome == "dropped"}
    acted_silently = sorted(set(committed) & dropped)
    assert not acted_silently, (
        f"{variant.id}: {len(acted_silently)} creates were committed but their connection "
        f"was closed without a response, e.g. {acted_silently[:3]}" + what()
    )
    assert committed == answered, (
        f"{variant.id}: committed items differ from the 201 responses: "
        f"missing {sorted(set(answered) - set(committed))[:5]}, "
        f"extra {sorted(set(committed) - set(answered))[:5]}" + what()
    )
    # The requests the server had accepted when SIGTERM came must all be answered.
    accepted = ACCEPTED_AT_ONCE.get(variant.framework, WEB_CONCURRENCY)
    assert held_outcomes["complete"] >= accepted, (
        f"{variant.id}: {held_outcomes['complete']} of the requests in flight at SIGTERM "
        f"were answered; the server had accepted {accepted} of them" + what()
    )
