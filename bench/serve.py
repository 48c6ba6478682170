"""Served throughput: the starter under its own ``make serve``, the framework's bare
hello-world app and a framework-free floor app under the same server command line,
measured by wrk in interleaved rounds, with the servers' CPU time per request."""

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
        r = client.get(f"/api/items?limit={ITEMS}")
        if r.status_code != 200 or len(r.json().get("items", [])) != ITEMS:
            raise CommandError(f"GET /api/items?limit={ITEMS}: {r.status_code} {r.content[:300]!r}")


def bench_serve(
    fw: str, project: Path, work: Path, seconds: int, rounds: int, warmup: int
) -> dict[str, Any]:
    database_url = f"sqlite:///{work / 'bench.db'}"
    env: dict[str, str | None] = {"WEB_CONCURRENCY": str(WORKERS)}
    package = package_name(project)
    # The same environment as harness.Server's, for `make migrate` and `make -n serve`.
    base: dict[str, str | None] = {
        "HOST": "127.0.0.1",
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "production",
        **env,
    }
    timed(["make", "migrate"], cwd=project, env=base, timeout=300)
    command = serve_command(project, {**base, "PORT": "8000"})

    def server(role: str, command: list[str] | None = None, port: int | None = None) -> Any:
        return harness.Server(
            project,
            database_url=database_url,
            log_path=work / f"server-{role}.log",
            env=env,
            migrate=False,
            startup_timeout=180,
            command=command,
            port=port,
        )

    servers = {"starter": server("starter")}
    for role, module in (("bare", f"{fw}_hello:app"), ("floor", floor_app(command))):
        port = harness.free_port()
        args = swap_app(serve_command(project, {**base, "PORT": str(port)}), package, module)
        servers[role] = server(role, args, port)
    result: dict[str, Any] = {
        "server": Path(command[0]).name,
        "command": shlex.join(command).replace(str(project) + "/", ""),
        "bare_command": shlex.join(servers["bare"].command or []).replace(str(ROOT) + "/", ""),
        "floor_command": shlex.join(servers["floor"].command or []).replace(str(ROOT) + "/", ""),
        "versions": venv_versions(project),
    }
    with contextlib.ExitStack() as stack:
        for s in servers.values():
            stack.enter_context(s)
        starter = servers["starter"]
        seed_items(starter)
        for role, path, _ in TARGETS:
            wrk(servers[role].base_url + path, warmup, CONNECTIONS)
        samples: dict[str, list[dict[str, Any]]] = {label: [] for *_, label in TARGETS}
        for _ in range(rounds):
            for role, path, label in TARGETS:
                samples[label].append(measure(servers[role], path, seconds))
        starter_log = "\n".join(starter.log().splitlines()[-3:])
    result["samples"] = samples
    result["median"] = {label: median_sample(s) for label, s in samples.items()}
    m = result["median"]
    bare = m["bare hello-world"]
    result["ratios"] = {
        "health_vs_bare": m["starter /health"]["rps"] / bare["rps"],
        "items_vs_bare": m[TARGETS[3][2]]["rps"] / bare["rps"],
        "bare_vs_floor": bare["rps"] / m["framework-free floor"]["rps"],
        "health_vs_bare_cpu": bare["cpu_ms_per_req"] / m["starter /health"]["cpu_ms_per_req"],
        "items_vs_bare_cpu": bare["cpu_ms_per_req"] / m[TARGETS[3][2]]["cpu_ms_per_req"],
    }
    result["starter_log_tail"] = starter_log
    return result
