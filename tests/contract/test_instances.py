"""Several instances behind a load balancer (docs/CONTRACT.md section 10).

Once per framework, on its kubernetes variant (PostgreSQL): two ``make serve`` instances
of the project on two ports share one fresh PostgreSQL database behind HAProxy (Debian's
package, started here on loopback with its own configuration, socket and log), and wrk
drives the load balancer with the contract suite's mix of creates, list pages, reads
and patches (``load_mix.lua``, every request on a connection of its own). One run holds
both events, to keep the suite short; it lasts until both instances are back and have
served again (about 10 s on an idle 2-core machine), then wrk gets SIGINT:

1. a rolling restart of instance ``a``, as the Kubernetes manifests do it: it leaves the
   rotation (the endpoint removal and the ``preStop`` pause; here the HAProxy runtime
   API's ``maint`` state) and, once nothing is in flight on it, gets SIGTERM, exits 0,
   is started again and rejoins when its ``/ready`` answers;
2. then instance ``b`` is killed with SIGKILL, in the middle of requests, and started
   again; HAProxy's passive check takes it out at the first refused connection and its
   active check (``/ready``) brings it back.

What the client sees: no socket error, and no 5xx except for the requests that were in
flight on ``b`` when it was killed. HAProxy retries an idempotent request (GET) whose
server died, and any request whose connection was refused (nothing was sent); a POST or
PATCH that had been sent to the killed instance cannot be retried safely (it may have
been committed) and is answered 502. HAProxy sends at most ``SERVER_MAXCONN`` requests at
a time to one instance (the rest wait in its queue and go to the other instance), so at
most that many fail, and the HAProxy log shows each of them on ``b`` after the kill.

What the database holds afterwards: every create answered 201 is there; every create
that failed or was unanswered is posted again, which settles it (201 now, or 409 because
it had been committed), and then the items of the run are exactly the 201s plus those:
nothing lost, nothing twice. The probes of ``deploy/kubernetes`` are asked of a running
instance: they answer 200.

Needs haproxy and wrk (Debian's packages; ``.ci/run`` installs them).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import harness
import httpx
import pytest
import yaml
from matrix import Variant

from contract.helpers import Database, assert_json, describe
from contract.test_load import (
    EXPECTED,
    LOAD_SCRIPT,
    WRK_TIMEOUT_SECONDS,
    LoadReport,
    _committed_names,
    _log_excerpt,
)

# wrk runs until both events are over and both instances have served again for
# AFTERWARDS seconds, then gets SIGINT (it reports as at the end of its -d); at most
# MAX_SECONDS.
AFTERWARDS = float(os.environ.get("CONTRACT_INSTANCES_AFTERWARDS", "2"))
MAX_SECONDS = 120
CONNECTIONS = 32
# Requests HAProxy has open to one instance at most: the bound on what a SIGKILL can cut.
SERVER_MAXCONN = 8
# When the restart begins, in seconds after wrk starts; the kill follows as soon as the
# restarted instance is back in the rotation.
RESTART_AT = 1.0


HAPROXY_CFG = """\
global
    maxconn 1024
    stats socket {socket} mode 600 level admin
    log stdout format raw local0

defaults
    mode http
    log global
    log-format "%Ts.%ms %Ta %s %ST %tsc %HM %[capture.req.hdr(0)]"
    option http-server-close
    timeout connect 2s
    timeout client 60s
    timeout server 30s
    timeout queue 15s
    timeout check 2s
    # A connection refused is retried (nothing was sent), on the other instance; so is
    # a GET whose instance died before answering. A POST or PATCH that was sent is not.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend web
    bind 127.0.0.1:{port}
    capture request header X-Request-ID len 80
    # HAProxy's own answers (a 502) carry the request's id too, as the app's do: the
    # load script tells the kind of a request by it.
    http-after-response set-header X-Request-ID %[capture.req.hdr(0)] unless {{ res.hdr(X-Request-ID) -m found }}
    default_backend app

backend app
    balance roundrobin
    http-request disable-l7-retry unless METH_GET
    option httpchk GET /ready
    http-check expect status 200
    # Active checks on /ready, and out at the first refused connection (passive).
    default-server check inter 500ms fall 2 rise 2 maxconn {maxconn} observe layer4 error-limit 1 on-error mark-down
    server a 127.0.0.1:{port_a}
    server b 127.0.0.1:{port_b}
"""


class HAProxy:
    """HAProxy in the foreground, its log on stdout (a file), its runtime API on a socket."""

    def __init__(self, workdir: Path, port_a: int, port_b: int) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        assert Path(binary).exists(), (
            "haproxy is not installed (Debian: apt-get install haproxy; .ci/run installs it)"
        )
        self.port = harness.free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.socket = workdir / "haproxy.sock"
        self.log_path = workdir / "haproxy.log"
        config = workdir / "haproxy.cfg"
        config.write_text(
            HAPROXY_CFG.format(
                socket=self.socket,
                port=self.port,
                port_a=port_a,
                port_b=port_b,
                maxconn=SERVER_MAXCONN,
            )
        )
        check = subprocess.run(
            [binary, "-c", "-q", "-f", str(config)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, f"haproxy refuses its configuration:\n{check.stderr}"
        self._log = open(self.log_path, "ab", buffering=0)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary, "-db", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        harness._live_groups.add(self.proc.pid)

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the backend's servers: {name: {field: value}}."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(text.splitlines())
        return {r["svname"]: r for r in rows if r["pxname"] == "app" and r["svname"] in "ab"}

    def wait_for(self, server: str, ok: Callable[[dict[str, str]], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited {self.proc.returncode}:\n{self.log()}")
            try:
                if ok(self.servers()[server]):
                    return
            except OSError:  # the socket is not there yet
                pass
            time.sleep(0.05)
        raise AssertionError(f"haproxy: server {server} not {what} within 60s: {self.servers()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        harness._kill_group(self.proc.pid)
        self.proc.wait(timeout=30)
        harness._live_groups.discard(self.proc.pid)
        self._log.close()


@dataclass
class Logged:
    """One request in HAProxy's log."""

    start: float  # when HAProxy accepted it (each request has a connection of its own)
    end: float
    server: str
    status: int
    termination: str
    method: str
    request_id: str


def haproxy_requests(log: str) -> list[Logged]:
    out = []
    for line in log.splitlines():
        m = re.fullmatch(r"(\d+\.\d+) (-?\d+) (\S+) (-?\d+) (\S+) (\S+) ?(\S*)", line.strip())
        if m:
            start = float(m.group(1))
            end = start + max(0, int(m.group(2))) / 1000
            server, status, termination, method, request_id = m.group(3, 4, 5, 6, 7)
            out.append(Logged(start, end, server, int(status), termination, method, request_id))
    return out


@pytest.fixture
def instances(
    variant: Variant,
    project: Path,
    databases: Callable[[], Database],
    tmp_path: Path,
) -> Iterator[tuple[harness.Server, harness.Server, HAProxy, Database]]:
    db = databases()
    a = harness.Server(project, database_url=db.url, log_path=tmp_path / "a.log")
    b = harness.Server(project, database_url=db.url, log_path=tmp_path / "b.log", migrate=False)
    lb: HAProxy | None = None
    try:
        a.start()  # migrates the database once
        b.start()
        lb = HAProxy(tmp_path, a.port, b.port)
        for name in "ab":
            lb.wait_for(name, lambda s: s["status"] == "UP", "UP")
        yield a, b, lb, db
    finally:
        for srv in (a, b):
            srv.stop()
        if lb is not None:
            lb.stop()


def _start_wrk(base_url: str, prefix: str, token: str) -> subprocess.Popen[str]:
    wrk = shutil.which("wrk")
    assert wrk, "wrk is not installed (Debian: apt-get install wrk; .ci/run installs it)"
    return subprocess.Popen(
        [
            wrk, "-t2", f"-c{CONNECTIONS}", f"-d{MAX_SECONDS}s", "--timeout",
            f"{WRK_TIMEOUT_SECONDS}s", "-s", str(LOAD_SCRIPT), base_url, "--", prefix, "close",
            token,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wrk_report(proc: subprocess.Popen[str]) -> LoadReport:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    match = re.search(r"^LOAD_JSON (\{.*\})$", out, re.MULTILINE)
    assert proc.returncode == 0 and match, f"wrk failed (exit {proc.returncode}):\n{out}\n{err}"
    return LoadReport(json.loads(match.group(1)), out)


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def _probe_paths(project: Path) -> list[str]:
    web = yaml.safe_load((project / "deploy/kubernetes/base/web.yaml").read_text())
    (container,) = web["spec"]["template"]["spec"]["containers"]
    probes = ("startupProbe", "livenessProbe", "readinessProbe")
    return [container[p]["httpGet"]["path"] for p in probes]


@harness.only_if(lambda v: v.kubernetes)
def test_two_instances_behind_a_load_balancer_survive_a_restart_and_a_kill(
    variant: Variant,
    project: Path,
    instances: tuple[harness.Server, harness.Server, HAProxy, Database],
) -> None:
    a, b, lb, db = instances
    with httpx.Client(timeout=10) as client:
        for path in _probe_paths(project):
            for srv in (a, b):
                r = client.get(srv.base_url + path)
                assert r.status_code == 200, f"{variant.id}: probe {path}" + describe(r)

    prefix = f"lb-{uuid.uuid4().hex[:8]}"
    events: dict[str, float] = {}  # seconds after wrk started
    killed_at = b_back_at = 0.0  # time.time(), to compare with HAProxy's log
    problems: list[str] = []
    start = time.monotonic()
    # Both instances share the database and SECRET_KEY: one token is good on either.
    wrk = _start_wrk(lb.base_url, prefix, a.token() if a.auth else "")
    try:
        # 1. Rolling restart of a: out of the rotation, drained, SIGTERM, back.
        _sleep_until(start + RESTART_AT)
        lb.command("set server app/a state maint")
        lb.wait_for("a", lambda s: s["scur"] == "0" and s["qcur"] == "0", "drained")
        a.terminate()
        code = a.wait(timeout=60)
        if code != 0:
            problems.append(f"a exited {code} after SIGTERM")
        a.stop()
        if a.leftovers:
            problems.append(f"a left processes running: {a.leftovers}")
        a.migrate = False
        a.start()
        lb.command("set server app/a state ready")
        lb.wait_for("a", lambda s: s["status"] == "UP", "UP again")
        events["a back"] = time.monotonic() - start

        # 2. b killed in the middle of requests, then started again.
        killed_at = time.time()
        events["kill"] = time.monotonic() - start
        assert b.proc is not None
        harness._kill_group(b.proc.pid)
        b.proc.wait(timeout=30)
        b.stop()
        b.start()
        lb.wait_for("b", lambda s: s["status"] == "UP", "UP again")
        events["b back"] = time.monotonic() - start
        b_back_at = time.time()
        time.sleep(AFTERWARDS)
        assert wrk.poll() is None, f"{variant.id}: wrk ended before the events were over"
    finally:
        report = _wrk_report(wrk)
    served = lb.servers()
    logged = haproxy_requests(lb.log())

    def what() -> str:
        failed = [f"{x.server} {x.status} {x.termination} {x.method} {x.request_id}"
                  for x in logged if x.status >= 500 or x.termination[0] == "S"]  # fmt: skip
        return (
            f"\n{report.describe()}\nevents (s after wrk started): {events}"
            f"\nhaproxy: {[(n, s['status'], s['stot']) for n, s in served.items()]}"
            f"\nhaproxy's failed requests: {failed[:20]}"
            f"\na:\n{_log_excerpt(a.log())}\nb:\n{_log_excerpt(b.log())}"
        )

    print(f"\n{variant.id}: {report.describe()}\nevents (s after wrk started): {events}")
    assert not problems, f"{variant.id}: {problems}" + what()
    truncated = [x for x in logged if x.termination.startswith("SD")]
    socket_errors = {k: v for k, v in report.errors.items() if k != "status" and v}
    assert socket_errors == ({"read": len(truncated)} if truncated else {}), (
        f"{variant.id}: socket errors through the LB: {socket_errors}, "
        f"{len(truncated)} responses cut short by the kill" + what()
    )
    assert len(logged) >= report.raw["summary"]["requests"], (
        f"{variant.id}: haproxy logged {len(logged)} requests" + what()
    )

    # Failures: only requests in flight on b when it was killed. A POST or PATCH that
    # b had received is answered 502 by HAProxy (termination state SH: the server closed
    # before answering); a response b was sending is cut short (SD: closed during the
    # data), which wrk counts as a read error.
    unexpected = {
        kind: {s: n for s, n in counts.items() if s != EXPECTED.get(kind)}
        for kind, counts in report.statuses.items()
    }
    unexpected = {kind: counts for kind, counts in unexpected.items() if counts}
    cut = {kind: counts for kind, counts in unexpected.items() if kind in ("create", "patch")}
    assert unexpected == cut and all(set(c) == {502} for c in cut.values()), (
        f"{variant.id}: unexpected statuses through the LB: {unexpected}" + what()
    )
    answered_502 = [x for x in logged if x.status >= 500]
    assert len(answered_502) == sum(n for c in cut.values() for n in c.values()), what()
    assert all(x.status == 502 and x.termination.startswith("SH") for x in answered_502)
    failed = answered_502 + truncated
    for x in failed:
        # On b, begun at most a second after the kill (before HAProxy's first refused
        # connection took b out), ended after it.
        in_flight = x.server == "b" and x.start <= killed_at + 1 and x.end >= killed_at
        assert in_flight, f"{variant.id}: a failure not in flight at the kill: {x}" + what()
    # HAProxy has at most SERVER_MAXCONN requests on b at once; while the killed processes
    # go (milliseconds), a slot that a finished response freed may be given once more.
    assert len(failed) <= 2 * SERVER_MAXCONN, (
        f"{variant.id}: {len(failed)} requests failed; at most {SERVER_MAXCONN} (and as "
        "many more sent while it died) were in flight on the killed instance" + what()
    )
    # Both instances served, before and after their event.
    for name in "ab":
        assert int(served[name]["stot"]) > 0, what()
    assert any(x.server == "a" and x.start > killed_at for x in logged), (
        f"{variant.id}: the restarted instance a took no request after the kill" + what()
    )
    assert any(x.server == "b" and x.start > b_back_at for x in logged), (
        f"{variant.id}: the restarted instance b took no request" + what()
    )

    # Nothing committed is lost, nothing is there twice.
    created = set(report.raw["created"])
    assert len(created) == report.count("create", 201), what()
    committed = _committed_names(db, prefix)
    missing = sorted(created - set(committed))
    assert not missing, f"{variant.id}: {len(missing)} creates answered 201 are gone" + what()
    refused = set(report.raw["refused"])
    assert len(refused) == sum(cut.get("create", {}).values()), what()
    unsettled = sorted(set(report.pending) | refused)
    with a.client() as api:
        for name in unsettled:
            r = api.post("/api/items", json={"name": name, "quantity": 1})
            assert r.status_code in (201, 409), f"{variant.id}: re-posting {name}" + describe(r)
        total = assert_json(api.get("/api/items", params={"limit": 1}), 200)["total"]
    committed = _committed_names(db, prefix)
    assert len(committed) == len(set(committed)), f"{variant.id}: a name stored twice" + what()
    assert sorted(committed) == sorted(created | set(unsettled)), (
        f"{variant.id}: the run's items are not the 201s plus the re-posted ones: "
        f"extra {sorted(set(committed) - created - set(unsettled))[:5]}" + what()
    )
    assert total == len(committed), what()
