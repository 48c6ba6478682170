"""background_jobs: the reports resource, a real Celery worker and a real Redis
(docs/CONTRACT.md section 9).

One stack per variant with jobs: its own ``redis-server`` (stopped and started again
here), a fresh database, ``make serve`` and ``make worker``, as a user runs them.

- a report goes pending -> done with the right figures;
- Redis stopped: POST is a 503 problem that leaves no pending row, /ready is 503;
  Redis back: both recover, and the same worker runs the next job, none restarted;
- a worker SIGKILLed in the middle of a job (held by a database lock the test takes):
  the report stays pending, the next worker runs the job again and it ends done once;
- with needs_auth, a report counts its requester's items, and is a 404 to another user.

Without background jobs, /api/reports is an unknown path and /ready has no broker.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import httpx
import postgres
import pytest
import redis_server
from matrix import Variant

from contract.helpers import Database, assert_json, assert_problem, create, describe

only_jobs = harness.only_if(lambda v: v.background_jobs)
without_jobs = harness.only_if(lambda v: not v.background_jobs)

QUEUE_UNAVAILABLE = "the job queue is unavailable; try again later"
# A job killed with its worker is handed to the next worker after this many seconds.
VISIBILITY_SECONDS = 3
# Queueing and /ready wait at most 2 s for Redis; the bound leaves room for a busy machine.
OUTAGE_BOUND = 8.0
JOB_BOUND = 60.0


@without_jobs
def test_no_reports_without_background_jobs(variant: Variant, server: harness.Server) -> None:
    with server.client() as api:
        assert_problem(api.post("/api/reports"), 404)
        assert assert_json(api.get("/ready"), 200)["checks"] == {"database": "ok"}


class Worker:
    """`make worker` in its own process group; SIGKILL takes the whole group at once."""

    def __init__(self, project: Path, env: dict[str, str | None], log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["make", "worker"],
                cwd=project,
                env=harness.base_env(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        harness._live_groups.add(self.proc.pid)
        self.wait_for(lambda log: " ready." in log, "the worker to start")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, ok: Callable[[str], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ok(self.log()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"waited in vain for {what}; worker log:\n{self.log()}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Signal the whole group (SIGKILL: no chance to give a job back) and reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        harness._kill_group(self.proc.pid)  # whatever is left of the group
        harness._live_groups.discard(self.proc.pid)


@dataclass
class Stack:
    project: Path
    db: Database
    redis: redis_server.RedisServer
    server: harness.Server
    logs: Path
    workers: list[Worker]
    reports_table: str

    def worker(self, **env: str) -> Worker:
        n = len(self.workers)
        # With observability, each worker serves its job metrics on a port and from a
        # directory of its own (not 9101 and its /tmp directory, which workers of
        # other variants running at the same time would share).
        own = {
            "WORKER_METRICS_PORT": str(harness.free_port()),
            "PROMETHEUS_MULTIPROC_DIR": str(self.logs / f"worker-{n}-metrics"),
        }
        worker = Worker(
            self.project,
            {**self.server.env, **own, **env},
            self.logs / f"worker-{n}.log",
        )
        self.workers.append(worker)
        return worker

    def pending_rows(self) -> int:
        sql = f"SELECT COUNT(*) FROM {self.reports_table} WHERE status = 'pending'"
        if self.db.kind == "sqlite":
            assert self.db.sqlite_path is not None
            with sqlite3.connect(self.db.sqlite_path, timeout=30) as con:
                return int(con.execute(sql).fetchone()[0])
        return int(self.db.psql(sql))


@pytest.fixture(scope="session")
def stack(
    variant: Variant,
    project: Path,
    databases: Callable[[], Database],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    logs = harness.variant_tmp(tmp_path_factory, variant, "jobs")
    try:
        redis = redis_server.RedisServer(logs).start()
    except redis_server.RedisUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    db = databases()
    server = harness.Server(
        project,
        database_url=db.url,
        log_path=logs / "server.log",
        env={"REDIS_URL": redis.url, "JOB_VISIBILITY_TIMEOUT": str(VISIBILITY_SECONDS)},
    )
    # Django names an app's tables after the app: reports_report.
    table = "reports_report" if variant.framework == "drf" else "reports"
    stack = Stack(project, db, redis, server, logs, [], table)
    try:
        server.start()
        stack.worker()
        yield stack
    finally:
        for worker in stack.workers:
            worker.stop()
        server.stop()
        redis.stop()


def _report(api: httpx.Client, location: str) -> dict[str, Any]:
    body: dict[str, Any] = assert_json(api.get(location), 200)
    assert set(body) == {"id", "status", "created_at", "finished_at", "result"}, body
    return body


def _ask(api: httpx.Client) -> tuple[dict[str, Any], str]:
    r = api.post("/api/reports")
    body = assert_json(r, 202)
    assert set(body) == {"id", "status", "created_at"}, describe(r)
    assert body["status"] == "pending", describe(r)
    location = r.headers.get("location")
    assert location == f"/api/reports/{body['id']}", "Location must be /api/reports/{id}"
    return body, location


def _wait_done(api: httpx.Client, location: str, timeout: float = JOB_BOUND) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        report = _report(api, location)
        if report["status"] != "pending" or time.monotonic() > deadline:
            assert report["status"] == "done", f"the report is not done: {report}"
            return report
        time.sleep(0.2)


def _figures(api: httpx.Client) -> dict[str, int]:
    """What a report must find now: the item count and the sum of the quantities."""
    count, total, offset = 0, 0, 0
    while True:
        page = assert_json(api.get("/api/items", params={"limit": 100, "offset": offset}), 200)
        count += len(page["items"])
        total += sum(item["quantity"] for item in page["items"])
        offset += 100
        if offset >= page["total"]:
            return {"item_count": count, "total_quantity": total}


@only_jobs
def test_a_report_goes_from_pending_to_done(variant: Variant, stack: Stack) -> None:
    with stack.server.client() as api:
        for quantity in (3, 40, 500):
            create(api, quantity=quantity)
        accepted, location = _ask(api)
        report = _wait_done(api, location)
        assert report["result"] == _figures(api) == {"item_count": 3, "total_quantity": 543}
        assert report["id"] == accepted["id"]
        assert report["created_at"] == accepted["created_at"]
        assert report["finished_at"] is not None and report["finished_at"] >= report["created_at"]
        assert_problem(api.get(f"/api/reports/{accepted['id'] + 1000}"), 404)
        assert_problem(api.get("/api/reports/abc"), 404)
        checks = assert_json(api.get("/ready"), 200)["checks"]
        assert checks == {"database": "ok", "broker": "ok"}


@only_jobs
def test_redis_outage(variant: Variant, stack: Stack) -> None:
    """Redis down: 503s and no pending row; Redis back: everything works again, no restart."""
    with stack.server.client() as api:
        stack.redis.stop()
        try:
            for _ in range(3):
                started = time.monotonic()
                r = api.post("/api/reports")
                elapsed = time.monotonic() - started
                assert_problem(r, 503, detail=QUEUE_UNAVAILABLE)
                assert elapsed < OUTAGE_BOUND, f"POST took {elapsed:.1f}s" + describe(r)
                started = time.monotonic()
                r = api.get("/ready")
                elapsed = time.monotonic() - started
                assert r.status_code == 503, describe(r)
                assert elapsed < OUTAGE_BOUND, f"/ready took {elapsed:.1f}s" + describe(r)
                checks = r.json()["checks"]
                assert checks["database"] == "ok", describe(r)
                assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", checks["broker"]), describe(r)
                assert checks["broker"] != "ok", describe(r)
            assert stack.pending_rows() == 0, "a refused report was left pending"
        finally:
            stack.redis.start()

        deadline = time.monotonic() + 30
        while (r := api.get("/ready")).status_code != 200:
            assert time.monotonic() < deadline, "/ready did not recover" + describe(r)
            time.sleep(0.5)
        assert r.json()["checks"] == {"database": "ok", "broker": "ok"}
        create(api, quantity=7)
        _, location = _ask(api)
        assert _wait_done(api, location)["result"] == _figures(api)
    assert [w.proc.poll() for w in stack.workers] == [None], "the worker must have kept running"


class _Lock:
    """Holds a lock on the items table from outside the app, until released."""

    def __init__(self, db: Database) -> None:
        self.db = db
        if db.kind == "sqlite":
            # The job's UPDATE waits for this writer (then gives up after its busy timeout).
            self.con = sqlite3.connect(db.sqlite_path or "", timeout=30, isolation_level=None)
            self.con.execute("BEGIN IMMEDIATE")
            return
        # The job's read of items waits for this lock.
        self.psql = subprocess.Popen(
            [str(postgres.cluster().bindir / "psql"), "-X", "-q", "-At", db.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
        assert self.psql.stdin is not None and self.psql.stdout is not None
        table = db.items_table()
        self.psql.stdin.write(
            f"BEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\nSELECT 'held';\n"
        )
        self.psql.stdin.flush()
        line = self.psql.stdout.readline()
        assert line.strip() == "held", f"psql could not lock items: {line}"

    def release(self) -> None:
        if self.db.kind == "sqlite":
            self.con.rollback()
            self.con.close()
            return
        # The killed worker's session may still wait for the lock: end it, as a server
        # does with a client that is gone.
        self.db.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        self.psql.communicate("ROLLBACK;\n\\q\n", timeout=30)


@only_jobs
def test_a_job_survives_its_worker_being_killed(variant: Variant, stack: Stack) -> None:
    with stack.server.client() as api:
        create(api, quantity=11)
        stack.workers[0].stop()  # no worker: the job waits in Redis
        _, location = _ask(api)
        lock = _Lock(stack.db)
        try:
            doomed = stack.worker()
            doomed.wait_for(lambda log: "build_report" in log and "received" in log, "the job")
            time.sleep(1)  # the job is now waiting for the lock, in the middle of its work
            doomed.stop(signal.SIGKILL)
        finally:
            lock.release()
        assert _report(api, location)["status"] == "pending"

        time.sleep(VISIBILITY_SECONDS)  # the killed worker's job is due to go back
        rescuer = stack.worker()
        report = _wait_done(api, location)
        assert report["result"] == _figures(api)
        assert _report(api, location) == report
        task = re.search(r"build_report\[([0-9a-f-]+)\] received", doomed.log())
        assert task is not None, doomed.log()
        succeeded = [
            line
            for w in stack.workers
            for line in w.log().splitlines()
            if task.group(1) in line and "succeeded" in line
        ]
        assert len(succeeded) == 1, f"the job ran to its end {len(succeeded)} times"
        assert rescuer.proc.poll() is None


@harness.only_if(lambda v: v.background_jobs and v.needs_auth)
def test_a_report_counts_only_its_requesters_items(variant: Variant, stack: Stack) -> None:
    """needs_auth: each report's figures are its requester's items (an admin's: every
    item); another user's report is a 404 (its existence not revealed)."""
    srv = stack.server
    suffix = uuid.uuid4().hex[:8]
    alice, bob = srv.user(f"alice{suffix}"), srv.user(f"bob{suffix}")
    admin = srv.user(f"admin{suffix}", admin=True)
    with (
        srv.client(auth=srv.bearer(alice)) as a,
        srv.client(auth=srv.bearer(bob)) as b,
        srv.client(auth=srv.bearer(admin)) as root,
    ):
        for quantity in (3, 40):
            create(a, quantity=quantity)
        create(b, quantity=500)
        _, my_location = _ask(a)
        _, their_location = _ask(b)
        _, all_location = _ask(root)
        assert _wait_done(a, my_location)["result"] == {"item_count": 2, "total_quantity": 43}
        assert _wait_done(b, their_location)["result"] == {"item_count": 1, "total_quantity": 500}
        assert _wait_done(root, all_location)["result"] == _figures(root)
        assert_problem(a.get(their_location), 404)
        assert_problem(b.get(my_location), 404)
        assert_json(root.get(my_location), 200)
    with srv.client(authenticated=False) as anon:
        r = anon.get(my_location)
        assert r.status_code == 401, describe(r)
        r = anon.post("/api/reports")
        assert r.status_code == 401, describe(r)
