"""Served throughput: the starter under its own ``make serve`` (and the same exporting
traces, without observability, with users and tokens, requested with a bearer token,
with async views, and under gunicorn's gthread workers), the framework's bare
hello-world app and a framework-free floor app under the same server command line, on
SQLite and on PostgreSQL, measured by wrk in interleaved rounds, with the servers' CPU
time per request."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import secrets
import shlex
import statistics
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import (
    APPS,
    CONNECTIONS,
    GTHREAD_ARGS,
    ITEMS,
    LIST,
    PAGE,
    PROFILED,
    ROOT,
    SIGNED_IN,
    TARGETS,
    WORKERS,
    WRK_SCRIPT,
    CommandError,
    harness,
    postgres,
    target_labels,
    timed,
)
from profiles import profile

# Distributions whose versions the results name (those installed in each venv).
VERSIONED = [
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "uvloop",
    "httptools",
    "django",
    "djangorestframework",
    "flask",
    "flask-openapi3",
    "bottle",
    "pyramid",
    "pyramid-openapi3",
    "gunicorn",
    "sqlalchemy",
]
SERVERS = ("uvicorn", "gunicorn")


def package_name(project: Path) -> str:
    text = (project / ".copier-answers.yml").read_text()
    match = re.search(r"^package_name:\s*['\"]?([A-Za-z0-9_]+)", text, re.MULTILINE)
    if not match:
        raise CommandError(f"no package_name in {project}/.copier-answers.yml")
    return match.group(1)


def serve_command(project: Path, env: dict[str, str | None]) -> list[str]:
    """The server command line of the project's ``make serve`` (``make -n``), to be run
    from the project's directory (where gunicorn finds its ``-c gunicorn.conf.py``)."""
    out = subprocess.run(
        ["make", "-n", "serve"],
        cwd=project,
        env=harness.base_env(env),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.replace("\\\n", " ").splitlines():
        args = shlex.split(line)
        if args and args[0] == "exec":
            args = args[1:]
        if args and Path(args[0]).name in SERVERS:
            return args
    raise CommandError(f"no uvicorn/gunicorn command in `make -n serve`:\n{out}")


# gunicorn's configuration file option: its value is a file name, never the application.
_CONFIG = ("-c", "--config")


def swap_app(args: list[str], package: str, app: str) -> list[str]:
    """The same server command line serving ``bench/apps/<app>`` instead of the starter
    (its other options, such as ``-c gunicorn.conf.py``, unchanged)."""
    out: list[str] = []
    swapped = False
    for i, arg in enumerate(args):
        if arg == "--factory":
            continue
        is_app = arg == package or arg.startswith((package + ".", package + ":"))
        if not swapped and is_app and not (i > 0 and args[i - 1] in _CONFIG):
            out.append(app)
            swapped = True
        else:
            out.append(arg)
    if not swapped:
        raise CommandError(f"no application argument ({package}...) in {shlex.join(args)}")
    path_flag = "--app-dir" if Path(args[0]).name == "uvicorn" else "--pythonpath"
    return [out[0], path_flag, str(APPS), *out[1:]]


class _Sink(BaseHTTPRequestHandler):
    """Takes OTLP/HTTP exports and drops them (an empty 200 is a successful export)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.exports += 1  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def trace_sink() -> Iterator[ThreadingHTTPServer]:
    """A local OTLP/HTTP endpoint for the "traced" starter; ``exports`` counts the batches."""
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    sink.exports = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()


# The items table where the starter's ORM does not call it `items`.
FLOOR_TABLES = {"drf": "items_item"}


def floor_app(command: list[str]) -> str:
    return "floor_asgi:app" if Path(command[0]).name == "uvicorn" else "floor_wsgi:app"


def wrk(
    url: str, seconds: int, connections: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    args = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
    ]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    args.append(url)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"^WRK_JSON (\{.*\})$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not match:
        shown = shlex.join(args)
        for value in (headers or {}).values():
            shown = shown.replace(value, "<redacted>")
        raise CommandError(f"`{shown}` failed:\n{proc.stdout}\n{proc.stderr}")
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def measure(
    server: harness.Server, path: str, seconds: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    assert server.proc is not None
    pgid = server.proc.pid
    cpu0 = harness.group_cpu_seconds(pgid)
    data = wrk(server.base_url + path, seconds, CONNECTIONS, headers)
    cpu = harness.group_cpu_seconds(pgid) - cpu0
    requests = data["requests"]
    errors = sum(
        data[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return {
        "rps": requests / (data["duration_us"] / 1e6),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "cpu_ms_per_req": cpu * 1000 / requests if requests else float("nan"),
        "requests": requests,
        "errors": errors,
        "status_errors": data["status_errors"],
    }


def median_sample(samples: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_req")
    out: dict[str, Any] = {k: statistics.median(s[k] for s in samples) for k in keys}
    out["errors"] = sum(s["errors"] for s in samples)
    out["requests"] = sum(s["requests"] for s in samples)
    return out


def venv_versions(project: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [str(project / ".venv/bin/python"), "-c", code, *VERSIONED],
        capture_output=True,
        text=True,
        check=True,
    )
    versions: dict[str, str] = json.loads(proc.stdout)
    return versions


def own_database(database_url: str, role: str) -> str:
    """A fresh database beside ``database_url``, for a role whose schema differs."""
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return f"sqlite:///{path.with_name(f'{path.stem}-{role}{path.suffix}')}"
    return postgres.cluster().create_database()


def sign_in(server: harness.Server, project: Path) -> dict[str, str]:
    """A user made with ``make createuser`` (from the environment, as a script runs it) and
    a token from ``POST /api/auth/token``: the headers of that user's requests."""
    username, password = "bench", secrets.token_urlsafe(16)
    timed(
        ["make", "createuser"],
        cwd=project,
        env={**server.env, "USERNAME": username, "PASSWORD": password},
        timeout=120,
    )
    with server.client() as client:
        r = client.post("/api/auth/token", data={"username": username, "password": password})
    if r.status_code != 200:
        raise CommandError(f"POST /api/auth/token: {r.status_code} {r.content[:300]!r}")
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def seed_items(server: harness.Server, headers: dict[str, str] | None = None) -> None:
    """``ITEMS`` items through the API, then check that the measured page lists ``PAGE`` of
    them and counts them all."""
    with server.client(headers=headers or {}) as client:
        for i in range(ITEMS):
            item = {"name": f"bench item {i + 1:02d}", "description": "seeded", "quantity": i}
            r = client.post("/api/items", json=item)
            if r.status_code != 201:
                raise CommandError(f"seeding item {i + 1}: {r.status_code} {r.content[:300]!r}")
        r = client.get(LIST)
        page = r.json() if r.status_code == 200 else {}
        if len(page.get("items", [])) != PAGE or page.get("total") != ITEMS:
            raise CommandError(f"GET {LIST}: {r.status_code} {r.content[:300]!r}")


def body_difference(starter: harness.Server, floor: harness.Server) -> str | None:
    """How the floor's list differs from the starter's as a JSON document (the same
    members, values and order; the whitespace may differ), or None when it does not: a
    floor that does less than the starter would flatter it."""
    with starter.client() as a, floor.client() as b:
        ours, theirs = (c.get(LIST).json(object_pairs_hook=list) for c in (a, b))
    if ours == theirs:
        return None
    return f"starter {str(ours)[:300]}, floor {str(theirs)[:300]}"


def bench_serve(
    fw: str,
    projects: dict[str, Path],
    database: str,
    database_url: str,
    work: Path,
    seconds: int,
    rounds: int,
    warmup: int,
    trace_endpoint: str,
) -> dict[str, Any]:
    """Serve ``projects`` (role: project; "starter" first, which also serves the
    baselines) on one database and measure ``TARGETS[database]`` in interleaved rounds.

    The roles of ``SIGNED_IN`` (users and tokens) get a database of their own (SQLite:
    a file next to the shared one; PostgreSQL: another database of the same server), a
    user, and their items and requests carry that user's token; the "traced" role
    exports its spans to ``trace_endpoint``."""
    targets = TARGETS[database]
    labels = target_labels(database)
    env: dict[str, str | None] = {"WEB_CONCURRENCY": str(WORKERS)}
    project = projects["starter"]
    package = package_name(project)
    # The same environment as harness.Server's, for `make migrate` and `make -n serve`.
    base: dict[str, str | None] = {
        "HOST": "127.0.0.1",
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
        **env,
    }
    # The starters share one database: the same schema, the same items.
    timed(["make", "migrate"], cwd=project, env=base, timeout=300)
    command = serve_command(project, {**base, "PORT": "8000"})
    roles = dict.fromkeys(role for role, _, _ in targets)
    urls = {role: database_url for role in roles}
    for role in SIGNED_IN & roles.keys() & projects.keys():
        urls[role] = own_database(database_url, role)
        own = {"DATABASE_URL": urls[role], "SECRET_KEY": secrets.token_urlsafe(32)}
        timed(["make", "migrate"], cwd=projects[role], env={**base, **own}, timeout=300)

    role_env = {
        "floor": {"FLOOR_ITEMS_TABLE": FLOOR_TABLES.get(fw, "items")},
        "traced": {"OTEL_EXPORTER_OTLP_ENDPOINT": trace_endpoint},
    }

    def server(
        role: str, where: Path, command: list[str] | None = None, port: int | None = None
    ) -> Any:
        # A token that outlives the run, however long its rounds take.
        lifetime = {"ACCESS_TOKEN_MINUTES": "600"} if role in SIGNED_IN else {}
        return harness.Server(
            where,
            database_url=urls[role],
            log_path=work / f"server-{database}-{role}.log",
            env={**env, **role_env.get(role, {}), **lifetime},
            migrate=False,
            startup_timeout=180,
            command=command,
            port=port,
        )

    servers = {role: server(role, projects[role]) for role in roles if role in projects}
    # The roles served by the starter's own command line, changed: the baselines swap the
    # application; gthread (gunicorn only) adds threaded workers.
    derived: dict[str, Callable[[list[str]], list[str]]] = {
        "bare": lambda args: swap_app(args, package, f"{fw}_hello:app"),
        "floor": lambda args: swap_app(args, package, floor_app(command)),
    }
    if Path(command[0]).name == "gunicorn":
        derived["gthread"] = lambda args: [*args, *GTHREAD_ARGS]
    for role, derive in derived.items():
        if role in roles:
            port = harness.free_port()
            args = derive(serve_command(project, {**base, "PORT": str(port)}))
            servers[role] = server(role, project, args, port)
    # A role this framework has no server for (async views, gthread under uvicorn) is
    # not measured.
    targets = tuple(t for t in targets if t[0] in servers)
    result: dict[str, Any] = {
        "database": database,
        "server": Path(command[0]).name,
        "command": shlex.join(command).replace(str(project) + "/", ""),
        "versions": venv_versions(project),
    }
    for role in derived:
        if role in servers:
            line = shlex.join(servers[role].command or []).replace(str(ROOT) + "/", "")
            result[f"{role}_command"] = line
    with contextlib.ExitStack() as stack:
        for s in servers.values():
            stack.enter_context(s)
        starter = servers["starter"]
        seed_items(starter)
        headers: dict[str, dict[str, str]] = {}
        for role in SIGNED_IN & servers.keys():
            headers[role] = sign_in(servers[role], projects[role])
            seed_items(servers[role], headers[role])
        result["floor_body_difference"] = body_difference(starter, servers["floor"])
        for role, path, _ in targets:
            wrk(servers[role].base_url + path, warmup, CONNECTIONS, headers.get(role))
        samples: dict[str, list[dict[str, Any]]] = {label: [] for *_, label in targets}
        for _ in range(rounds):
            for role, path, label in targets:
                samples[label].append(measure(servers[role], path, seconds, headers.get(role)))
        result["profiles"] = {}
        for role, path in PROFILED[database]:
            if role in servers:
                url = servers[role].base_url + path
                load = functools.partial(wrk, url, seconds, CONNECTIONS, headers.get(role))
                result["profiles"][labels[role, path]] = profile(
                    servers[role], path, seconds, projects[role], load, work
                )
        result["starter_log_tail"] = "\n".join(starter.log().splitlines()[-3:])
    result["samples"] = samples
    result["median"] = {label: median_sample(s) for label, s in samples.items()}
    return result
