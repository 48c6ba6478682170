"""Served throughput: the starter under its own ``make serve`` (and the same without
observability), the framework's bare hello-world app and a framework-free floor app
under the same server command line, on SQLite and on PostgreSQL, measured by wrk in
interleaved rounds, with the servers' CPU time per request."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import statistics
import subprocess
from pathlib import Path
from typing import Any

from common import (
    APPS,
    CONNECTIONS,
    ITEMS,
    LIST,
    ROOT,
    TARGETS,
    WORKERS,
    WRK_SCRIPT,
    CommandError,
    harness,
    timed,
)

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


def floor_app(command: list[str]) -> str:
    return "floor_asgi:app" if Path(command[0]).name == "uvicorn" else "floor_wsgi:app"


def wrk(url: str, seconds: int, connections: int) -> dict[str, Any]:
    args = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"^WRK_JSON (\{.*\})$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not match:
        raise CommandError(f"`{shlex.join(args)}` failed:\n{proc.stdout}\n{proc.stderr}")
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def measure(server: harness.Server, path: str, seconds: int) -> dict[str, Any]:
    assert server.proc is not None
    pgid = server.proc.pid
    cpu0 = harness.group_cpu_seconds(pgid)
    data = wrk(server.base_url + path, seconds, CONNECTIONS)
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


def seed_items(server: harness.Server) -> None:
    """``ITEMS`` items through the API, then check that one page lists them all."""
    with server.client() as client:
        for i in range(ITEMS):
            item = {"name": f"bench item {i + 1:02d}", "description": "seeded", "quantity": i}
            r = client.post("/api/items", json=item)
            if r.status_code != 201:
                raise CommandError(f"seeding item {i + 1}: {r.status_code} {r.content[:300]!r}")
        r = client.get(LIST)
        if r.status_code != 200 or len(r.json().get("items", [])) != ITEMS:
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
) -> dict[str, Any]:
    """Serve ``projects`` (role: project; "starter" first, which also serves the
    baselines) on one database and measure ``TARGETS[database]`` in interleaved rounds."""
    targets = TARGETS[database]
    env: dict[str, str | None] = {"WEB_CONCURRENCY": str(WORKERS)}
    project = projects["starter"]
    package = package_name(project)
    # The same environment as harness.Server's, for `make migrate` and `make -n serve`.
    base: dict[str, str | None] = {
        "HOST": "127.0.0.1",
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "production",
        **env,
    }
    # The starters share one database: the same schema, the same items.
    timed(["make", "migrate"], cwd=project, env=base, timeout=300)
    command = serve_command(project, {**base, "PORT": "8000"})

    def server(
        role: str, where: Path, command: list[str] | None = None, port: int | None = None
    ) -> Any:
        return harness.Server(
            where,
            database_url=database_url,
            log_path=work / f"server-{database}-{role}.log",
            env=env,
            migrate=False,
            startup_timeout=180,
            command=command,
            port=port,
        )

    roles = dict.fromkeys(role for role, _, _ in targets)
    servers = {role: server(role, projects[role]) for role in roles if role in projects}
    baselines = {"bare": f"{fw}_hello:app", "floor": floor_app(command)}
    for role, module in baselines.items():
        if role in roles:
            port = harness.free_port()
            args = swap_app(serve_command(project, {**base, "PORT": str(port)}), package, module)
            servers[role] = server(role, project, args, port)
    result: dict[str, Any] = {
        "database": database,
        "server": Path(command[0]).name,
        "command": shlex.join(command).replace(str(project) + "/", ""),
        "versions": venv_versions(project),
    }
    for role in baselines:
        if role in servers:
            line = shlex.join(servers[role].command or []).replace(str(ROOT) + "/", "")
            result[f"{role}_command"] = line
    with contextlib.ExitStack() as stack:
        for s in servers.values():
            stack.enter_context(s)
        starter = servers["starter"]
        seed_items(starter)
        result["floor_body_difference"] = body_difference(starter, servers["floor"])
        for role, path, _ in targets:
            wrk(servers[role].base_url + path, warmup, CONNECTIONS)
        samples: dict[str, list[dict[str, Any]]] = {label: [] for *_, label in targets}
        for _ in range(rounds):
            for role, path, label in targets:
                samples[label].append(measure(servers[role], path, seconds))
        result["starter_log_tail"] = "\n".join(starter.log().splitlines()[-3:])
    result["samples"] = samples
    result["median"] = {label: median_sample(s) for label, s in samples.items()}
    return result
