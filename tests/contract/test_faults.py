"""Database faults under a running server (docs/CONTRACT.md sections 3 and 4: "database
unreachable: 503").

A database that cannot be used gets 503s, never a 500, a traceback, a hang or a crash:
``/ready`` answers ``{"status": "unavailable", "checks": {"database": "<class name>"}}``
and the API a 503 problem. Once the database can be used again, the same server
processes (no restart) serve normally, with the data written before the fault.

- PostgreSQL stops under a server whose pools are warm, with a fast shutdown (every
  connection terminated), and later with an immediate one (the server processes killed),
  then starts again on the same port and data directory. The server runs on a cluster of
  its own, so the other tests of the worker, on the worker's shared cluster, go on.
- SQLite: another connection holds the write lock (``BEGIN EXCLUSIVE``) for longer than
  the starters' busy timeout; and the database file is read-only. Both faults leave reads
  working (see the tests), and only writes get the 503.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import harness
import httpx
import postgres
import pytest
from harness import only_database
from matrix import Variant

from contract.helpers import (
    assert_item,
    assert_json,
    assert_problem,
    check_common,
    describe,
    media_type,
    sans_broker,
    uniq,
)

# Every starter gives up on the database after 10 s, whatever fails: the connect timeout,
# the wait for a pooled connection (3 s for psycopg's pools) and SQLite's busy timeout are
# all 10 s (TIMEOUT_SECONDS in db.py; DRF: settings.py); a refused connection fails at
# once. So each request gets its answer within those 10 s, plus 10 s for a loaded, shared
# 2-core machine. (A starter that waits longer, or not at all, fails here: DRF's 30 s busy
# timeout had gunicorn kill the worker at its own 30 s timeout, leaving no answer.)
ANSWER_BOUND = 20.0
# Back to normal after the fault ends: the next connection attempt succeeds at once, a
# psycopg pool's own retries come within 2 s, a connection SQLite opened read-only is
# gone once the request using it has ended. 15 s: that, plus the slack of a loaded machine.
RECOVERY_BOUND = 15.0
# A read under SQLite's write lock in WAL mode does not wait for the lock at all; 5 s
# is slack only (half the busy timeout a read waiting for the lock would show).
READ_BOUND = 5.0
# The starters' SQLite busy timeout: a write waits this long for the lock, then gets a 503.
BUSY_TIMEOUT = 10.0

CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,99}")
# A stack trace, a file path or SQL in a body (docs/CONTRACT.md section 4).
LEAKS = re.compile(r"Traceback|File \"|\.py\b|SELECT |INSERT |UPDATE |DELETE FROM", re.IGNORECASE)


# --------------------------------------------------------------------------- requests


_clients = threading.local()


def request(
    srv: harness.Server, method: str, path: str, **kwargs: Any
) -> tuple[httpx.Response, float]:
    """One request on a new connection (so that requests spread over the workers), as
    the default user with needs_auth; returns the response and how long it took. No
    answer at all fails the test."""
    client = getattr(_clients, "client", None)
    if client is None:
        # One client per thread, keeping no connection open between requests.
        limits = httpx.Limits(max_keepalive_connections=0)
        client = _clients.client = httpx.Client(timeout=ANSWER_BOUND + 30, limits=limits)
    if srv.auth:
        kwargs.setdefault("auth", srv.bearer())
    started = time.monotonic()
    try:
        r = client.request(method, srv.base_url + path, **kwargs)
    except httpx.HTTPError as exc:
        elapsed = time.monotonic() - started
        raise AssertionError(
            f"{method} {path}: no answer after {elapsed:.1f}s ({type(exc).__name__}: {exc}); "
            f"server log tail:\n{srv.log()[-3000:]}"
        ) from None
    return r, time.monotonic() - started


Req = tuple[str, str, dict[str, Any]]


def in_parallel(
    srv: harness.Server, reqs: list[Req], workers: int
) -> list[tuple[httpx.Response, float]]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda req: request(srv, req[0], req[1], **req[2]), reqs))


def new_item() -> dict[str, Any]:
    return {"name": uniq("fault"), "quantity": 3, "description": "written before the fault"}


def within(elapsed: float, bound: float, r: httpx.Response) -> None:
    assert elapsed <= bound, (
        f"answered after {elapsed:.1f}s, over the {bound:.0f}s bound" + describe(r)
    )


def assert_unavailable_ready(r: httpx.Response) -> None:
    """/ready's own 503 body (not a problem document): the error's class name as reason."""
    assert r.status_code == 503, "/ready must answer 503 while the database is down" + describe(r)
    check_common(r)
    assert media_type(r) in {"application/json", "application/problem+json"}, describe(r)
    body = sans_broker(r.json())
    assert isinstance(body, dict) and set(body) == {"status", "checks"}, describe(r)
    assert body["status"] == "unavailable", describe(r)
    assert isinstance(body["checks"], dict) and set(body["checks"]) == {"database"}, describe(r)
    reason = body["checks"]["database"]
    assert isinstance(reason, str) and CLASS_NAME.fullmatch(reason) and reason != "ok", (
        "the reason must be the exception's class name" + describe(r)
    )


def assert_unavailable(r: httpx.Response, elapsed: float) -> None:
    """A 503 problem within the bound, with nothing of the failure's internals."""
    within(elapsed, ANSWER_BOUND, r)
    assert not LEAKS.search(r.text), "the body shows a traceback, a path or SQL" + describe(r)
    if r.request.url.path == "/ready":
        assert_unavailable_ready(r)
    else:
        assert_problem(r, 503)


def assert_ready(r: httpx.Response) -> None:
    assert sans_broker(assert_json(r, 200)) == {"status": "ok", "checks": {"database": "ok"}}, (
        describe(r)
    )


# --------------------------------------------------------------------------- server state


def server_pids(srv: harness.Server) -> set[int]:
    """Every live process of the server (make, the master, the workers)."""
    assert srv.proc is not None
    return set(harness.group_members(srv.proc.pid))


def settled_pids(srv: harness.Server) -> set[int]:
    """The server's processes once every worker has booted (the set holds still for 1 s)."""
    pids, deadline = server_pids(srv), time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(1)
        now = server_pids(srv)
        if now == pids:
            break
        pids = now
    return pids


def assert_same_processes(srv: harness.Server, before: set[int]) -> None:
    after = server_pids(srv)
    assert after == before, (
        f"the server's processes changed (a worker crashed or was restarted): before "
        f"{sorted(before)}, after {sorted(after)}; log tail:\n{srv.log()[-4000:]}"
    )


def assert_clean_exit(srv: harness.Server) -> None:
    """After the fault, SIGTERM still stops the server with exit status 0."""
    code = srv.stop()
    assert srv.stop_problem is None, srv.stop_problem + f"\nlog tail:\n{srv.log()[-4000:]}"
    assert code == 0, f"`make serve` exited {code} after SIGTERM; log tail:\n{srv.log()[-4000:]}"
    assert not srv.leftovers, f"processes left after SIGTERM: {srv.leftovers}"


def pg_connections(srv: harness.Server, pg_port: int) -> dict[int, int]:
    """How many established TCP connections to PostgreSQL each server process holds."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == pg_port and fields[3] == "01":  # ESTABLISHED
                inodes.add(fields[9])
    held: dict[int, int] = {}
    for pid in server_pids(srv):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held[pid] = held.get(pid, 0) + 1
    return held


# --------------------------------------------------------------------------- the API at work


class Items:
    """The items the test wrote, as the API last returned them."""

    def __init__(self) -> None:
        self.by_id: dict[int, dict[str, Any]] = {}

    def create(self, srv: harness.Server, count: int, workers: int) -> None:
        reqs: list[Req] = [("POST", "/api/items", {"json": new_item()}) for _ in range(count)]
        for r, _ in in_parallel(srv, reqs, workers):
            body = assert_item(assert_json(r, 201))
            self.by_id[body["id"]] = body

    def check_all(self, srv: harness.Server, workers: int) -> None:
        """The list has exactly these items, as written; a few read back one by one too."""
        reqs: list[Req] = [("GET", "/api/items", {"params": {"limit": 100}})] * workers
        reqs += [("GET", f"/api/items/{i}", {}) for i in sorted(self.by_id)[:workers]]
        for r, _ in in_parallel(srv, reqs, workers):
            body = assert_json(r, 200)
            if r.request.url.path == "/api/items":
                assert body["total"] == len(self.by_id), (
                    f"the list must hold exactly the {len(self.by_id)} items written" + describe(r)
                )
                assert {i["id"]: i for i in body["items"]} == self.by_id, describe(r)
            else:
                assert body == self.by_id[body["id"]], "the item changed" + describe(r)

    def exercise(self, srv: harness.Server, workers: int) -> None:
        """GET, POST, PATCH and DELETE, several of each at once, all served normally; then
        every item reads back as the API last returned it (check_all)."""
        self.create(srv, workers + 1, workers)
        ids = sorted(self.by_id)
        patched, deleted = ids[-workers:], ids[:1]  # distinct: at least workers + 1 items
        reqs: list[Req] = [("PATCH", f"/api/items/{i}", {"json": {"quantity": 7}}) for i in patched]
        reqs += [("DELETE", f"/api/items/{i}", {}) for i in deleted]
        reqs += [("GET", "/ready", {})] * workers
        for r, _ in in_parallel(srv, reqs, workers):
            method = r.request.method
            if method == "PATCH":
                body = assert_item(assert_json(r, 200), quantity=7)
                self.by_id[body["id"]] = body
            elif method == "DELETE":
                assert r.status_code == 204 and not r.content, describe(r)
            else:
                assert_ready(r)
        for i in deleted:
            del self.by_id[i]
            assert_problem(request(srv, "GET", f"/api/items/{i}")[0], 404)
        self.check_all(srv, workers)


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def fault_cluster() -> Iterator[postgres.PostgresCluster]:
    """A PostgreSQL cluster that the tests stop and start (the worker's own one stays up)."""
    try:
        cluster = postgres.new_cluster()
    except postgres.PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cluster
    cluster.stop()


def warm_up(srv: harness.Server, variant: Variant, items: Items, pg_port: int) -> None:
    """Traffic of every kind through both workers, until both hold pooled connections.

    Flask's async views run each request in a new event loop, so those starters keep no
    connection between requests (db.py: ``pooled=False``): nothing to warm there.
    """
    pooled = not (variant.framework == "flask" and variant.needs_async)
    deadline = time.monotonic() + 60
    while True:
        items.exercise(srv, workers=6)
        held = pg_connections(srv, pg_port)
        if not pooled or len(held) >= 2 or time.monotonic() > deadline:
            break
    if pooled:
        assert len(held) >= 2, (
            f"after a minute of traffic, only {held} (pid: connections) hold connections to "
            "PostgreSQL: both workers should"
        )


def outage(srv: harness.Server, variant: Variant, everything: bool) -> None:
    """Requests while PostgreSQL is down: all 503, each within the bound.

    ``everything``: readiness probes, lists and creates, twice each (so every worker, and
    the pooled connections that died with the shutdown, get used); else only a readiness
    probe per worker, as a load balancer sends: the connections the API uses are still
    the dead ones when PostgreSQL comes back.

    A sync worker (gunicorn's, all but FastAPI) serves one request at a time, so those
    get two at a time: a queue behind a 3 s pool wait would be the client's wait, not the
    server's answer time. Uvicorn's workers serve them all at once.
    """
    reqs: list[Req] = [("GET", "/ready", {})]
    if everything:
        reqs += [("GET", "/api/items", {}), ("POST", "/api/items", {"json": new_item()})]
    concurrency = 6 if variant.framework == "fastapi" else 2
    for r, elapsed in in_parallel(srv, reqs * 2, workers=concurrency):
        assert_unavailable(r, elapsed)


def wait_ready(srv: harness.Server, since: float) -> None:
    """/ready says 200 within the bound after PostgreSQL is back (503s until then)."""
    while True:
        r, elapsed = request(srv, "GET", "/ready")
        if r.status_code == 200:
            assert_ready(r)
            return
        assert_unavailable(r, elapsed)
        waited = time.monotonic() - since
        assert waited <= RECOVERY_BOUND, (
            f"/ready still 503 {waited:.1f}s after PostgreSQL came back" + describe(r)
        )
        time.sleep(0.25)


@only_database("postgresql")
def test_postgresql_stops_and_returns(
    variant: Variant,
    project: Path,
    fault_cluster: postgres.PostgresCluster,
    tmp_path: Path,
) -> None:
    url = fault_cluster.create_database()
    # The cluster runs with synchronous_commit=off; an immediate shutdown could lose the
    # last commits of this database and the test would blame the starter.
    fault_cluster.psql(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET synchronous_commit = on")
    srv = harness.Server(project, database_url=url, log_path=tmp_path / "server.log")
    items = Items()
    with srv:
        warm_up(srv, variant, items, fault_cluster.port)
        processes = settled_pids(srv)
        for mode, everything in (("fast", False), ("immediate", True)):
            fault_cluster.halt(mode)
            try:
                outage(srv, variant, everything)
            finally:
                fault_cluster.resume()
            wait_ready(srv, since=time.monotonic())
            # Served normally, with every row written before the outage and none of the
            # writes refused during it (exercise() ends by reading them all).
            items.exercise(srv, workers=6)
        assert_same_processes(srv, processes)
        assert_clean_exit(srv)


# --------------------------------------------------------------------------- SQLite


def sqlite_files(db: Path) -> list[Path]:
    """The database file and, in WAL mode, its -wal and -shm files (when they exist)."""
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def set_writable(db: Path, writable: bool) -> None:
    for path in sqlite_files(db):
        path.chmod(0o644 if writable else 0o444)


# Root writes a file whatever its mode says (CAP_DAC_OVERRIDE): the tests, here and on CI,
# run as root, so the server that must find its database read-only runs without the
# capabilities that bypass file permissions. Dropped from the bounding set by setpriv
# (util-linux), they are gone for `make serve` and every process it starts.
DROPPED_CAPABILITIES = ("dac_override", "dac_read_search", "fowner")
CAP_DAC_OVERRIDE = 1  # bit number in /proc/<pid>/status Cap* masks


def unprivileged() -> list[str]:
    """The command prefix that runs `make serve` unable to write a read-only file."""
    if os.geteuid() != 0:
        return []  # file permissions already apply
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if setpriv is None:
        pytest.fail(
            "setpriv (util-linux) is needed to serve without CAP_DAC_OVERRIDE: as root, a "
            "read-only database file is writable anyway, and the test would prove nothing",
            pytrace=False,
        )
    drop = ",".join(f"-{cap}" for cap in DROPPED_CAPABILITIES)
    prefix = [setpriv, "--bounding-set", drop, "--"]
    probe = subprocess.run(
        [*prefix, "true"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        pytest.fail(
            f"`{' '.join(prefix)} true` failed ({probe.returncode}: {probe.stderr.strip()}): "
            "cannot drop CAP_DAC_OVERRIDE, so root would write the read-only database",
            pytrace=False,
        )
    return prefix


def assert_without_dac_override(srv: harness.Server) -> None:
    """Every server process lacks CAP_DAC_OVERRIDE (else the read-only file is not)."""
    if os.geteuid() != 0:
        return
    for pid in server_pids(srv):
        status = Path(f"/proc/{pid}/status").read_text()
        found = re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.MULTILINE)
        assert found, f"no CapEff line in /proc/{pid}/status"
        effective = int(found.group(1), 16)
        assert not effective >> CAP_DAC_OVERRIDE & 1, (
            f"server process {pid} still has CAP_DAC_OVERRIDE: "
            "it would write the read-only database file"
        )


def sqlite_server(project: Path, db: Path, log: Path, *, migrate: bool = True) -> harness.Server:
    return harness.Server(
        project, database_url=f"sqlite:///{db}", log_path=log, migrate=migrate,
        prefix=unprivileged(),
    )  # fmt: skip


def write_under_lock(srv: harness.Server, db: Path, items: Items) -> None:
    """Another connection holds the write lock; a write waits, then gets a 503; reads go on.

    The starters put the file in WAL mode, where a writer never blocks readers: reads
    (and /ready's trivial query) answer at once, with the committed rows. A write waits
    for the lock for the busy timeout (so that short write bursts queue rather than fail),
    then answers 503: the database cannot be written now.
    """
    holder = sqlite3.connect(db, isolation_level=None, timeout=5)
    pool = ThreadPoolExecutor(1)
    try:
        mode = holder.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal", f"the starter left the database in {mode!r} mode, not WAL"
        holder.execute("BEGIN EXCLUSIVE")
        write = pool.submit(request, srv, "POST", "/api/items", json=new_item())
        some_id = min(items.by_id)
        reads: list[Req] = [
            ("GET", "/api/items", {"params": {"limit": 100}}),
            ("GET", f"/api/items/{some_id}", {}),
            ("GET", "/ready", {}),
        ]
        for method, path, kwargs in reads * 2:
            r, elapsed = request(srv, method, path, **kwargs)
            within(elapsed, READ_BOUND, r)
            if path == "/ready":
                assert_ready(r)
            elif path == "/api/items":
                body = assert_json(r, 200)
                assert {i["id"]: i for i in body["items"]} == items.by_id, describe(r)
            else:
                assert assert_json(r, 200) == items.by_id[some_id], describe(r)
        try:
            r, elapsed = write.result(timeout=ANSWER_BOUND + 5)
        except TimeoutError:
            raise AssertionError(
                f"no answer to a write under the lock within {ANSWER_BOUND + 5:.0f}s"
            ) from None
    finally:
        holder.close()  # rolls the lock's transaction back: the lock is held a bounded time
        pool.shutdown(wait=True)
    assert_unavailable(r, elapsed)
    assert elapsed >= BUSY_TIMEOUT / 2, (
        f"the write failed after {elapsed:.1f}s: it should wait for the lock (the busy "
        f"timeout, {BUSY_TIMEOUT:.0f}s) before giving up" + describe(r)
    )


def wait_writable(srv: harness.Server, items: Items) -> None:
    """A write succeeds within the bound once the file is writable again (503s until then).

    The bound allows for connections opened read-only that are still open at that moment
    (a request's connection goes back to the pool after its response is sent): while one
    is open, SQLite makes the process's other connections to the file read-only too.
    """
    since = time.monotonic()
    while True:
        r, elapsed = request(srv, "POST", "/api/items", json=new_item())
        if r.status_code == 201:
            body = assert_item(assert_json(r, 201))
            items.by_id[body["id"]] = body
            return
        assert_unavailable(r, elapsed)
        waited = time.monotonic() - since
        assert waited <= RECOVERY_BOUND, (
            f"writes still refused {waited:.1f}s after the file became writable" + describe(r)
        )
        time.sleep(0.1)


@only_database("sqlite")
def test_sqlite_locked_then_read_only(variant: Variant, project: Path, tmp_path: Path) -> None:
    """A write lock held by another connection, then a read-only database file.

    Read-only: the server starts on a file it cannot write (the realistic case: a file
    that turns read-only under a running server stays writable through the connections
    it already has open). SQLite then opens it read-only: reads work (the file is in WAL
    mode since the first server used it, and a read needs no write), each write fails at
    once with SQLITE_READONLY: a 503, the database cannot be written now. /ready's trivial
    query reads, so it says 200: the database answers. Once the file is writable again,
    the same processes write again, without a restart.
    """
    db = tmp_path / "app.db"
    items = Items()
    srv = sqlite_server(project, db, tmp_path / "locked.log")
    with srv:
        items.exercise(srv, workers=4)
        processes = settled_pids(srv)
        write_under_lock(srv, db, items)
        # Everything works as before; the refused write left nothing behind.
        items.exercise(srv, workers=4)
        assert_same_processes(srv, processes)
        assert_clean_exit(srv)

    set_writable(db, False)
    srv = sqlite_server(project, db, tmp_path / "read-only.log", migrate=False)
    with srv:
        assert_without_dac_override(srv)
        items.check_all(srv, workers=4)
        assert_ready(request(srv, "GET", "/ready")[0])
        some_id = min(items.by_id)
        writes: list[Req] = [
            ("POST", "/api/items", {"json": new_item()}),
            ("PATCH", f"/api/items/{some_id}", {"json": {"quantity": 9}}),
            ("DELETE", f"/api/items/{some_id}", {}),
        ]
        for r, elapsed in in_parallel(srv, writes * 2, workers=2):
            assert_unavailable(r, elapsed)
        items.check_all(srv, workers=4)
        processes = settled_pids(srv)

        set_writable(db, True)
        wait_writable(srv, items)
        items.exercise(srv, workers=4)
        assert_same_processes(srv, processes)
        assert_clean_exit(srv)
