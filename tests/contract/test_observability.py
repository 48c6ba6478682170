"""Metrics, traces and error reports (docs/CONTRACT.md section 8), with real components.

Each test starts its own ``make serve`` (2 workers, a fresh database), once per framework
on its first sampled variant with ``observability`` (every such variant with
``--full-matrix``):

- ``test_metrics_add_up_over_the_workers``: a known mix of requests, spread over both
  workers (new connection each), then ``/metrics`` counts exactly that per
  ``{method, route, status}``, the histogram counts agree, the route is the template and
  no raw id is a label value. A real Prometheus (Debian's package; ``.ci/run`` installs
  it) on a loopback port scrapes the server and its query API gives the same counts.
  The server has no ``SENTRY_DSN``: a 500 there reports nothing.
- ``test_traces_and_error_reports``: an OTLP/HTTP receiver (spans decoded with
  ``opentelemetry-proto``) and a Sentry envelope receiver run in the test; the server
  gets ``OTEL_EXPORTER_OTLP_ENDPOINT`` and ``SENTRY_DSN`` pointing at them. A request
  with a ``traceparent`` gives a server span ``GET /api/items/{item_id}`` in that trace,
  a database child span, and the same ``trace_id`` in the request's log line; an
  unhandled exception gives exactly one Sentry event, tagged with the request id and
  without the cookie or authorization the client sent.
- ``test_a_job_continues_its_request_trace_and_is_counted`` (with ``background_jobs``):
  ``make serve`` and ``make worker`` export to the OTLP receiver; a report's POST, sent
  with a ``traceparent``, and its job are one trace (request span -> the span that
  queued the job -> the job's span). The worker's own ``/metrics`` (its
  ``WORKER_METRICS_PORT``) counts the job, and a real Prometheus scraping it sees it.
"""

from __future__ import annotations

import gzip
import http.server
import json
import shutil
import subprocess
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

import harness
import httpx
import pytest
import redis_server
from matrix import Variant
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from contract.helpers import (
    Database,
    assert_json,
    assert_problem,
    create,
    describe,
    request_log_entries,
    uniq,
    wait_for_log,
)
from contract.test_jobs import Worker

pytestmark = pytest.mark.timeout(420)

observed = harness.only_if(lambda v: v.observability)
observed_jobs = harness.only_if(lambda v: v.observability and v.background_jobs)
ITEM = "/api/items/{item_id}"
ITEMS = "/api/items"
UNMATCHED = "unmatched"
Labels = tuple[str, str, str]  # method, route, status


# --------------------------------------------------------------------------- receivers


class _Receiver:
    """An HTTP server on 127.0.0.1 in a thread, keeping the bodies POSTed to it."""

    def __init__(self, answer: Callable[[str], bytes]) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding:
                    raise AssertionError(f"unexpected Content-Encoding {encoding!r}")
                with receiver.lock:
                    receiver.bodies.append((self.path, body))
                reply = answer(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.bodies)


def _spans(receiver: _Receiver) -> list[Any]:
    spans = []
    for path, body in receiver.received():
        assert path == "/v1/traces", f"OTLP/HTTP posts traces to /v1/traces, not {path}"
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    return spans


def _envelope_items(body: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
    """The (item header, payload) pairs of a Sentry envelope."""
    _, _, rest = body.partition(b"\n")
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        yield header, payload


def _sentry_events(receiver: _Receiver) -> list[dict[str, Any]]:
    events = []
    for path, body in receiver.received():
        assert path == "/api/1/envelope/", f"unexpected Sentry endpoint {path}"
        for header, payload in _envelope_items(body):
            if header.get("type") == "event":
                events.append(json.loads(payload))
    return events


# --------------------------------------------------------------------------- metrics


def _counts(text: str) -> tuple[dict[Labels, float], dict[tuple[str, str], dict[str, float]]]:
    """http_requests_total by labels; per (method, route) the histogram's count, sum, +Inf."""
    requests: dict[Labels, float] = {}
    histograms: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "http_requests_total":
                key = (labels["method"], labels["route"], labels["status"])
                requests[key] = sample.value
            elif sample.name.startswith("http_request_duration_seconds"):
                parts = histograms.setdefault((labels["method"], labels["route"]), {})
                if sample.name.endswith("_count"):
                    parts["count"] = sample.value
                elif sample.name.endswith("_sum"):
                    parts["sum"] = sample.value
                elif sample.name.endswith("_bucket") and labels.get("le") == "+Inf":
                    parts["inf"] = sample.value
    return requests, histograms


def _scrape(api: httpx.Client) -> str:
    r = api.get("/metrics")
    assert r.status_code == 200, describe(r)
    assert r.headers["content-type"].startswith("text/plain"), describe(r)
    return r.text


def _traffic(
    base_url: str, item_ids: list[int], auth: dict[str, str]
) -> tuple[Counter[Labels], list[str]]:
    """A known mix of requests, each on its own connection, four at a time."""
    missing = max(item_ids) + 100_000
    plan: list[tuple[str, str, Any, Labels]] = []
    for item_id in item_ids:
        plan.append(("GET", f"/api/items/{item_id}", None, ("GET", ITEM, "200")))
        plan.append(("GET", f"/api/items/{item_id}", None, ("GET", ITEM, "200")))
    plan += [("GET", f"/api/items/{missing}", None, ("GET", ITEM, "404"))] * 3
    plan += [("GET", "/api/items", None, ("GET", ITEMS, "200"))] * 3
    plan += [("POST", "/api/items", {"quantity": 1}, ("POST", ITEMS, "422"))] * 2
    plan += [("GET", f"/no/such/{item_ids[0]}", None, ("GET", UNMATCHED, "404"))] * 3
    plan += [("PATCH", f"/api/items/{missing}", {"quantity": 2}, ("PATCH", ITEM, "404"))] * 2

    def send(step: tuple[str, str, Any, Labels]) -> None:
        method, path, body, labels = step
        headers = {"Connection": "close", **auth}
        with httpx.Client(base_url=base_url, timeout=30, headers=headers) as c:
            r = c.request(method, path, json=body)
        assert str(r.status_code) == labels[2], f"{method} {path}" + describe(r)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, plan))
    return Counter(step[3] for step in plan), [step[1] for step in plan]


def _prometheus_query(port: int, query: str) -> dict[Labels, float]:
    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=10)
    body = r.json()
    assert body["status"] == "success", body
    return {
        (m["metric"]["method"], m["metric"]["route"], m["metric"]["status"]): float(m["value"][1])
        for m in body["data"]["result"]
    }


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[int], int]]:
    """Start Prometheus scraping 127.0.0.1:<port>/metrics every second; returns its port."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (apt-get install prometheus; .ci/run does)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> int:
        port = harness.free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: app\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(proc)
        return port

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@observed
@harness.once_per_framework
def test_metrics_add_up_over_the_workers(
    variant: Variant,
    databases: Callable[[], Database],
    start_server: Callable[..., harness.Server],
    prometheus: Callable[[int], int],
    tmp_path: Path,
) -> None:
    multiproc_dir = tmp_path / "metrics"
    db = databases()
    with _Receiver(lambda path: b"{}") as sentry:
        srv = start_server(
            env={
                "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
                # Empty is unset: nothing may be reported.
                "SENTRY_DSN": "",
            },
            database=db,
            name="metrics",
        )
        with srv.client() as api:
            ids = [create(api, name=uniq("metered"))["id"] for _ in range(3)]
            before, _ = _counts(_scrape(api))
            expected: Counter[Labels] = Counter()
            paths: list[str] = []
            # Until both workers have answered (each writes its own file), send the mix again.
            for _ in range(5):
                sent, sent_paths = _traffic(srv.base_url, ids, srv.auth_headers())
                expected += sent
                paths += sent_paths
                if len(list(multiproc_dir.glob("counter_*.db"))) >= 2:
                    break
            workers = sorted(p.name for p in multiproc_dir.glob("counter_*.db"))
            assert len(workers) >= 2, f"one worker answered everything: {workers}"
            text = _scrape(api)
            after, histograms = _counts(text)

            # Exactly the requests sent, per label set, whichever worker answered.
            for labels, count in expected.items():
                got = after.get(labels, 0) - before.get(labels, 0)
                assert got == count, f"{labels}: /metrics counts {got}, sent {count}\n{text}"
            for labels in set(after) | set(before):
                if labels[1] in (ITEM, ITEMS, UNMATCHED) and labels not in expected:
                    assert after.get(labels) == before.get(labels), f"{labels} moved:\n{text}"
            # The histogram counts the same requests as the counter.
            for (method, route), parts in histograms.items():
                total = sum(v for (m, r, _), v in after.items() if (m, r) == (method, route))
                assert parts.get("count") == total == parts.get("inf"), (method, route, parts)
                assert parts.get("sum", -1) >= 0, (method, route, parts)
            # Route templates only: no raw path (and so no id) is ever a label value.
            routes = {labels[1] for labels in after}
            assert {ITEM, ITEMS, UNMATCHED} <= routes, routes
            assert all(route == UNMATCHED or route.startswith("/") for route in routes), routes
            for path in set(paths):
                if path not in routes:
                    assert f'"{path}"' not in text, f"raw path {path} is a label:\n{text}"
            assert not any(ch.isdigit() for route in routes for ch in route), routes

            # A real Prometheus scraping the server sees the same counts.
            port = prometheus(srv.port)
            query = 'sum by (method, route, status) (http_requests_total{route=~"/api/items.*"})'
            want = {k: v for k, v in after.items() if k[1] in (ITEM, ITEMS)}
            deadline = time.monotonic() + 60
            seen: dict[Labels, float] | str = "no answer"
            while time.monotonic() < deadline:
                try:
                    seen = _prometheus_query(port, query)
                except (httpx.HTTPError, ValueError) as exc:
                    seen = f"{type(exc).__name__}: {exc}"
                if seen == want:
                    break
                time.sleep(1)
            assert seen == want, f"Prometheus answers {seen}, /metrics said {want}"

            # Without SENTRY_DSN, an unhandled exception is reported nowhere.
            path = db.break_for_500(ids[0])
            assert_problem(api.get(path), 500)
        time.sleep(2)
        assert sentry.received() == [], "something was sent with SENTRY_DSN empty"


# --------------------------------------------------------------------------- traces, Sentry


@observed
@harness.once_per_framework
def test_traces_and_error_reports(
    variant: Variant,
    databases: Callable[[], Database],
    start_server: Callable[..., harness.Server],
) -> None:
    db = databases()
    empty_export = ExportTraceServiceResponse().SerializeToString()
    with (
        _Receiver(lambda path: empty_export) as otlp,
        _Receiver(lambda path: b'{"id": "0"}') as sentry,
    ):
        srv = start_server(
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp.port}",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
                "SENTRY_DSN": f"http://public@127.0.0.1:{sentry.port}/1",
            },
            database=db,
            name="traced",
        )
        trace_id = uniq("").encode().hex()[:32].rjust(32, "a")
        parent_id = "b7ad6b7169203331"
        rid = uniq("rid-traced")
        with srv.client() as api:
            item = create(api, name=uniq("traced"))
            r = api.get(
                f"/api/items/{item['id']}",
                headers={"traceparent": f"00-{trace_id}-{parent_id}-01", "X-Request-ID": rid},
            )
            assert_json(r, 200)

            # The server span, in the caller's trace, named after the route.
            deadline = time.monotonic() + 30
            server_spans: list[Any] = []
            spans: list[Any] = []
            while time.monotonic() < deadline and not server_spans:
                spans = _spans(otlp)
                server_spans = [s for s in spans if s.trace_id.hex() == trace_id and s.kind == 2]
                time.sleep(0.2)
            names = sorted({(s.name, s.trace_id.hex()) for s in spans})
            assert len(server_spans) == 1, f"no single server span in trace {trace_id}: {names}"
            server_span = server_spans[0]
            assert server_span.name == f"GET {ITEM}", names
            assert server_span.parent_span_id.hex() == parent_id
            # Its database query: a client span, a child of the server span.
            time.sleep(1)
            in_trace = [s for s in _spans(otlp) if s.trace_id.hex() == trace_id]
            children = [
                s
                for s in in_trace
                if s.parent_span_id == server_span.span_id
                and s.kind == 3
                and any(a.key.startswith("db.") for a in s.attributes)
            ]
            assert children, "no database span under the server span: " + str(
                [(s.name, s.kind, s.parent_span_id.hex()) for s in in_trace]
            )
            # The request's log line carries the trace id.
            log = wait_for_log(srv.log, lambda text: request_log_entries(text, rid))
            entries = request_log_entries(log, rid)
            assert len(entries) == 1, log[-3000:]
            assert entries[0].get("trace_id") == trace_id, entries[0]

            # An unhandled exception: one Sentry event, tagged with the request id.
            path = db.break_for_500(item["id"])
            rid_500 = uniq("rid-sentry")
            # With needs_auth the token must be the user's own to get that far.
            token = srv.token() if srv.auth else "token-value-never-sent"
            secrets = ("cookie-value-never-sent", token)
            r = api.get(
                path,
                headers={
                    "X-Request-ID": rid_500,
                    "Cookie": f"session={secrets[0]}",
                    "Authorization": f"Bearer {secrets[1]}",
                },
            )
            assert_problem(r, 500)
            deadline = time.monotonic() + 30
            events: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not events:
                events = _sentry_events(sentry)
                time.sleep(0.2)
            time.sleep(3)  # a second report would have arrived by now
            events = _sentry_events(sentry)
            assert len(events) == 1, json.dumps(events, indent=1)[:4000]
            event = events[0]
            tags = event.get("tags") or {}
            tags = dict(tags) if isinstance(tags, dict) else {k: v for k, v in tags}
            assert tags.get("request_id") == rid_500, tags
            assert event.get("exception", {}).get("values"), event
            text = json.dumps(event)
            for secret in secrets:
                assert secret not in text, f"the report carries {secret}"


# --------------------------------------------------------------------------- jobs

SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP span kinds


def _job_figures(text: str) -> dict[tuple[str, str], float]:
    """{(sample name, task): value} of the worker's job metrics."""
    return {
        (sample.name, sample.labels["task"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("job") and "task" in sample.labels and "le" not in sample.labels
    }


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[redis_server.RedisServer]:
    """A Redis of the test's own: the shared one holds the jobs that other variants'
    servers queued with no worker, which this test's worker would run and count."""
    try:
        redis = redis_server.RedisServer(tmp_path).start()
    except redis_server.RedisUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield redis
    redis.stop()


@observed_jobs
@harness.once_per_framework
def test_a_job_continues_its_request_trace_and_is_counted(
    variant: Variant,
    project: Path,
    databases: Callable[[], Database],
    start_server: Callable[..., harness.Server],
    prometheus: Callable[[int], int],
    own_redis: redis_server.RedisServer,
    tmp_path: Path,
) -> None:
    empty_export = ExportTraceServiceResponse().SerializeToString()
    with _Receiver(lambda path: empty_export) as otlp:
        srv = start_server(
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp.port}",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
                "REDIS_URL": own_redis.url,
            },
            database=databases(),
            name="jobs",
        )
        metrics_port = harness.free_port()
        # Left over from an earlier run: the worker empties its directory as it starts.
        (tmp_path / "worker-metrics").mkdir()
        (tmp_path / "worker-metrics" / "counter_1.db").write_bytes(b"stale")
        worker = Worker(
            project,
            {
                **srv.env,
                "WORKER_METRICS_PORT": str(metrics_port),
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "worker-metrics"),
            },
            tmp_path / "worker.log",
        )
        try:
            worker.wait_for(lambda log: "job metrics on port" in log, "the worker's metrics")
            scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
            assert scraped.status_code == 200, scraped.text
            assert _job_figures(scraped.text) == {}, scraped.text
            # Prometheus starts now, while the job runs; it scrapes the worker every second.
            prometheus_port = prometheus(metrics_port)

            trace_id = uniq("").encode().hex()[:32].rjust(32, "c")
            parent_id = "c7ad6b7169203332"
            with srv.client() as api:
                create(api, quantity=4)
                r = api.post(
                    "/api/reports", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
                )
                location = r.headers.get("location", "")
                assert_json(r, 202)
                deadline = time.monotonic() + 60
                while (report := assert_json(api.get(location), 200))["status"] == "pending":
                    assert time.monotonic() < deadline, f"the job did not run: {report}"
                    time.sleep(0.2)
                assert report["status"] == "done", report

            # One trace: the request's span, the span that queued the job, the job's span.
            deadline = time.monotonic() + 30
            in_trace: list[Any] = []
            while time.monotonic() < deadline:
                in_trace = [s for s in _spans(otlp) if s.trace_id.hex() == trace_id]
                if {SERVER, PRODUCER, CONSUMER} <= {s.kind for s in in_trace}:
                    break
                time.sleep(0.2)
            names = [(s.name, s.kind, s.span_id.hex(), s.parent_span_id.hex()) for s in in_trace]
            by_kind = {
                k: [s for s in in_trace if s.kind == k] for k in (SERVER, PRODUCER, CONSUMER)
            }
            assert [len(by_kind[k]) for k in (SERVER, PRODUCER, CONSUMER)] == [1, 1, 1], names
            (request,), (queued,), (job,) = by_kind[SERVER], by_kind[PRODUCER], by_kind[CONSUMER]
            assert request.name == "POST /api/reports", names
            assert request.parent_span_id.hex() == parent_id, names
            assert queued.parent_span_id == request.span_id, names
            assert job.parent_span_id == queued.span_id, names
            assert job.name.startswith("run/") and job.name.endswith(".build_report"), names

            # The worker's /metrics counts the job (its figures from its child process).
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
            figures = _job_figures(text)
            tasks = {task for _, task in figures}
            assert len(tasks) == 1, text
            task = tasks.pop()
            assert task.endswith(".build_report"), text
            assert figures == {
                ("jobs_started_total", task): 1.0,
                ("jobs_succeeded_total", task): 1.0,
                ("job_duration_seconds_count", task): 1.0,
                ("job_duration_seconds_sum", task): figures[("job_duration_seconds_sum", task)],
            }, text
            assert figures[("job_duration_seconds_sum", task)] > 0, text

            # A real Prometheus scraping the worker sees the job too.
            query = f'jobs_succeeded_total{{task="{task}"}}'
            deadline = time.monotonic() + 60
            seen: Any = "no answer"
            while time.monotonic() < deadline:
                try:
                    body = httpx.get(
                        f"http://127.0.0.1:{prometheus_port}/api/v1/query",
                        params={"query": query},
                    ).json()
                    seen = [float(m["value"][1]) for m in body["data"]["result"]]
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    seen = f"{type(exc).__name__}: {exc}"
                if seen == [1.0]:
                    break
                time.sleep(1)
            assert seen == [1.0], f"Prometheus answers {seen} for {query}"
        finally:
            worker.stop()
