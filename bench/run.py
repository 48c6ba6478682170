"""Benchmarks of the template and of the starters it renders (`make bench`).

For every framework that has a template (``tests/matrix.py``'s ``FRAMEWORKS``;
those not yet in ``AVAILABLE`` are marked "not yet enabled"):

1. **Render time**: ``copier copy --defaults`` of the default variant, median of
   ``--render-runs`` runs, interleaved with as many runs of ``copier --version``
   (Copier's own start-up) so that both see the same machine load; then every other
   valid variant once, to find the slowest.
2. **Time to green**: a fresh render, ``make install`` (the package cache is warm: the
   same project was installed just before) and the generated project's ``make test``.
3. **Served throughput**: the starter under its own ``make serve`` (2 workers, loopback,
   ``ENVIRONMENT=production``, SQLite with 20 items), the framework's bare hello-world
   app (``bench/apps/<framework>_hello.py``) and a framework-free ASGI/WSGI callable
   (``bench/apps/floor_*.py``), both served by the very command line of the starter's
   ``make serve`` with only the application swapped, from the starter's own venv. wrk
   (1 thread, 32 connections) measures requests/s and p50/p99 latency, in interleaved
   rounds; the servers' own CPU time per request is read from /proc.

Results: ``bench/results/latest.{md,png,json}``; a full run also rewrites the results
block of the root README (between the ``bench-results`` markers).

Run from the repository root: ``uv run --with matplotlib python bench/run.py``
(``--help`` for the options). Needs wrk (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APPS = BENCH / "apps"
RESULTS = BENCH / "results"
WRK_SCRIPT = BENCH / "wrk_report.lua"
README = ROOT / "README.md"
README_START = "<!-- bench-results:start -->"
README_END = "<!-- bench-results:end -->"

sys.path.insert(0, str(ROOT / "tests"))
import matrix  # tests/matrix.py: FRAMEWORKS, AVAILABLE, all_variants

# The targets of the issue; reported, never asserted.
RENDER_MAX_S = 1.5
RENDER_MAX_RATIO = 3.0
GREEN_MAX_S = 30.0
HEALTH_MIN_RATIO = 0.80
ITEMS_MIN_RATIO = 0.25
P99_MAX_MS = 50.0
CONNECTIONS = 32
WORKERS = 2
ITEMS = 20

FRAMEWORK_TITLES = {
    "fastapi": "FastAPI",
    "drf": "DRF",
    "flask": "Flask",
    "bottle": "Bottle",
    "pyramid": "Pyramid",
}
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

# The four measurements of a framework, in the order of every round.
TARGETS = (
    ("floor", "/health", "framework-free floor"),
    ("bare", "/health", "bare hello-world"),
    ("starter", "/health", "starter /health"),
    ("starter", f"/api/items?limit={ITEMS}", f"starter /api/items?limit={ITEMS}"),
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- environment


def find_uv() -> str | None:
    for candidate in (shutil.which("uv"), "/tmp/tools/bin/uv", str(ROOT / ".tools/bin/uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


_PASS_THROUGH = re.compile(r"^(UV_|PIP_)|^(SSL_CERT_FILE|SSL_CERT_DIR|TMPDIR)$")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """System PATH plus uv's directory, HOME, a UTF-8 locale and the package-index
    variables; nothing of the caller's project configuration (DATABASE_URL, PORT...)."""
    path = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    uv = find_uv()
    if uv:
        path.append(str(Path(uv).parent))
    env = {
        "PATH": ":".join(path),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "NO_COLOR": "1",
    }
    env.update({k: v for k, v in os.environ.items() if _PASS_THROUGH.search(k)})
    env.update(extra or {})
    return env


def copier_command() -> list[str]:
    exe = shutil.which("copier") or shutil.which("copier", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "copier"]


class CommandError(RuntimeError):
    pass


@dataclass
class Timed:
    wall: float
    cpu: float
    output: str
    returncode: int


def timed(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> Timed:
    """Run a command in its own process group; wall time and CPU time (user + system,
    of the command and every process it waited for). Raises CommandError on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = Timed(wall, cpu, out.decode(errors="replace"), proc.returncode)
    if proc.returncode != 0:
        tail = "\n".join(result.output.splitlines()[-25:])
        raise CommandError(f"`{shlex.join(args)}` exited with {proc.returncode}:\n{tail}")
    return result


# --------------------------------------------------------------------------- template snapshot


def snapshot_template(dest: Path) -> dict[str, str]:
    """Copy the working tree (tracked and untracked, not ignored files) into a fresh git
    repository with one commit: every render of the run uses the same template, a clean
    one (as users get from a tag), whatever others change meanwhile."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    dest.mkdir(parents=True)
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if not src.exists() or src.is_dir():
            continue  # deleted but still tracked, or a submodule
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench snapshot"], cwd=dest, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {"commit": head, "dirty": "yes" if dirty else "no"}


# --------------------------------------------------------------------------- rendering


@dataclass
class Renderer:
    template: Path
    work: Path
    copier: list[str] = field(default_factory=copier_command)

    def __post_init__(self) -> None:
        settings = self.work / "copier-settings.yml"
        settings.write_text("{}\n")
        self.env = clean_env({"COPIER_SETTINGS_PATH": str(settings)})
        self._count = 0

    def version(self) -> Timed:
        return timed([*self.copier, "--version"], cwd=self.work, env=self.env)

    def render(self, dest: Path, framework: str, variant: matrix.Variant | None = None) -> Timed:
        data: dict[str, Any] = {
            "framework": framework,
            "available_frameworks": list(matrix.FRAMEWORKS),
        }
        if variant is not None:
            data.update(
                needs_async=variant.needs_async,
                use_orm=variant.use_orm,
                database=variant.database,
            )
            if variant.use_orm:
                data["needs_admin"] = variant.needs_admin
        self._count += 1
        data_file = self.work / f"data-{self._count}.yml"
        data_file.write_text(json.dumps(data) + "\n")  # JSON is YAML
        args = [
            *self.copier,
            "copy",
            "--defaults",
            "--quiet",
            "--vcs-ref",
            "HEAD",
            "--data-file",
            str(data_file),
            str(self.template),
            str(dest),
        ]
        return timed(args, cwd=self.work, env=self.env, timeout=300)


def bench_render(
    fw: str, renderer: Renderer, work: Path, runs: int, variants: bool
) -> tuple[dict[str, Any], Path]:
    """Render medians for one framework; returns the result and a rendered default project."""
    walls, cpus, v_walls, v_cpus = [], [], [], []
    first: Path | None = None
    for i in range(runs):
        v = renderer.version()
        v_walls.append(v.wall)
        v_cpus.append(v.cpu)
        dest = work / f"render-{i}"
        r = renderer.render(dest, fw)
        walls.append(r.wall)
        cpus.append(r.cpu)
        if first is None:
            first = dest
        else:
            shutil.rmtree(dest)
    assert first is not None
    result: dict[str, Any] = {
        "runs": runs,
        "wall_s": walls,
        "cpu_s": cpus,
        "version_wall_s": v_walls,
        "version_cpu_s": v_cpus,
        "median_s": statistics.median(walls),
        "median_cpu_s": statistics.median(cpus),
        "version_median_s": statistics.median(v_walls),
        "version_median_cpu_s": statistics.median(v_cpus),
    }
    result["ratio"] = result["median_s"] / result["version_median_s"]
    result["cpu_ratio"] = result["median_cpu_s"] / result["version_median_cpu_s"]
    result["files"] = sum(1 for p in first.rglob("*") if p.is_file())
    others: list[dict[str, Any]] = []
    if variants:
        for variant in matrix.all_variants(fw)[1:]:
            dest = work / f"variant-{variant.id}"
            r = renderer.render(dest, fw, variant)
            others.append({"variant": variant.id, "wall_s": r.wall, "cpu_s": r.cpu})
            shutil.rmtree(dest)
    result["variants"] = others
    default_id = matrix.default_variant(fw).id
    every = [{"variant": default_id, "wall_s": result["median_s"], "cpu_s": result["median_cpu_s"]}]
    result["slowest"] = max(every + others, key=lambda r: r["wall_s"])
    return result, first


# --------------------------------------------------------------------------- time to green


def bench_green(fw: str, renderer: Renderer, warm_project: Path, work: Path) -> dict[str, Any]:
    """Warm the package cache with ``warm_project`` (kept for serving), then time a fresh
    render, ``make install`` and ``make test``."""
    env = clean_env()
    warm = timed(["make", "install"], cwd=warm_project, env=env)
    project = work / "green"
    r = renderer.render(project, fw)
    install = timed(["make", "install"], cwd=project, env=env)
    test = timed(["make", "test"], cwd=project, env=env)
    summary = re.findall(r"=+ (.*?) in [\d.]+s", test.output)
    result = {
        "warm_install_s": warm.wall,
        "render_s": r.wall,
        "install_s": install.wall,
        "test_s": test.wall,
        "total_s": r.wall + install.wall + test.wall,
        "tests": summary[-1] if summary else "",
        "installer": "uv" if find_uv() else "venv + pip",
    }
    shutil.rmtree(project)
    return result


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of the live processes of a process group."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 12 and int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _CLK_TCK


class Server:
    """A server command in its own process group, ready once GET /health answers 200."""

    def __init__(self, name: str, args: list[str], cwd: Path, env: dict[str, str], port: int):
        self.name = name
        self.args = args
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = cwd.parent / f"server-{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CommandError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            try:
                status, body = http("GET", self.base_url + "/health", timeout=2)
                if status == 200:
                    return
                last = f"{status} {body[:200]!r}"
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        raise CommandError(f"{self.name} not ready in {timeout:.0f}s ({last}):\n{self.tail()}")

    def cpu(self) -> float:
        return group_cpu_seconds(self.proc.pid)

    def tail(self, lines: int = 25) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        # Whatever the group still holds (workers finishing, or a stuck server): killed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._log.close()


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


def package_name(project: Path) -> str:
    text = (project / ".copier-answers.yml").read_text()
    match = re.search(r"^package_name:\s*['\"]?([A-Za-z0-9_]+)", text, re.MULTILINE)
    if not match:
        raise CommandError(f"no package_name in {project}/.copier-answers.yml")
    return match.group(1)


def serve_command(project: Path, env: dict[str, str]) -> list[str]:
    """The server command line of the project's ``make serve`` (``make -n``)."""
    out = subprocess.run(
        ["make", "-n", "serve"], cwd=project, env=env, capture_output=True, text=True, check=True
    ).stdout
    for line in out.replace("\\\n", " ").splitlines():
        args = shlex.split(line)
        if args and args[0] == "exec":
            args = args[1:]
        if args and Path(args[0]).name in ("uvicorn", "gunicorn"):
            return args
    raise CommandError(f"no uvicorn/gunicorn command in `make -n serve`:\n{out}")


def swap_app(args: list[str], package: str, app: str) -> list[str]:
    """The same server command line serving ``bench/apps/<app>`` instead of the starter."""
    out: list[str] = []
    swapped = False
    for arg in args:
        if arg == "--factory":
            continue
        if not swapped and (arg == package or arg.startswith((package + ".", package + ":"))):
            out.append(app)
            swapped = True
        else:
            out.append(arg)
    if not swapped:
        raise CommandError(f"no application argument ({package}...) in {shlex.join(args)}")
    path_flag = "--app-dir" if Path(args[0]).name == "uvicorn" else "--pythonpath"
    return [out[0], path_flag, str(APPS), *out[1:]]


def wrk(url: str, seconds: float, connections: int) -> dict[str, Any]:
    args = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
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


def measure(server: Server, path: str, seconds: float) -> dict[str, Any]:
    cpu0 = server.cpu()
    data = wrk(server.base_url + path, seconds, CONNECTIONS)
    cpu = server.cpu() - cpu0
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


def bench_serve(
    fw: str, project: Path, work: Path, seconds: float, rounds: int, warmup: float
) -> dict[str, Any]:
    base = {
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": str(WORKERS),
        "DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
    }
    package = package_name(project)
    timed(["make", "migrate"], cwd=project, env=clean_env(base), timeout=300)
    command = serve_command(project, clean_env({**base, "PORT": "8000"}))

    def env_for(port: int) -> dict[str, str]:
        return clean_env({**base, "PORT": str(port)})

    port = free_port()
    servers = [Server("starter", ["make", "serve"], project, env_for(port), port)]
    for role, module in (("bare", f"{fw}_hello:app"), ("floor", floor_app(command))):
        port = free_port()
        args = swap_app(serve_command(project, env_for(port)), package, module)
        servers.append(Server(role, args, project, env_for(port), port))
    by_role = {s.name: s for s in servers}
    result: dict[str, Any] = {
        "server": Path(command[0]).name,
        "command": shlex.join(command).replace(str(project) + "/", ""),
        "bare_command": shlex.join(servers[1].args).replace(str(ROOT) + "/", ""),
        "floor_command": shlex.join(servers[2].args).replace(str(ROOT) + "/", ""),
        "versions": venv_versions(project),
    }
    with running(servers):
        starter = by_role["starter"]
        for i in range(ITEMS):
            status, body = http(
                "POST",
                starter.base_url + "/api/items",
                {"name": f"bench item {i + 1:02d}", "description": "seeded", "quantity": i},
            )
            if status != 201:
                raise CommandError(f"seeding item {i + 1}: {status} {body[:300]!r}")
        status, body = http("GET", starter.base_url + f"/api/items?limit={ITEMS}")
        page = json.loads(body)
        if status != 200 or len(page.get("items", [])) != ITEMS:
            raise CommandError(f"GET /api/items?limit={ITEMS}: {status} {body[:300]!r}")
        for role, path, _ in TARGETS:
            wrk(by_role[role].base_url + path, warmup, CONNECTIONS)
        samples: dict[str, list[dict[str, Any]]] = {label: [] for *_, label in TARGETS}
        for _ in range(rounds):
            for role, path, label in TARGETS:
                samples[label].append(measure(by_role[role], path, seconds))
        starter_log = starter.tail(3)
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


def floor_app(command: list[str]) -> str:
    return "floor_asgi:app" if Path(command[0]).name == "uvicorn" else "floor_wsgi:app"


def median_sample(samples: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_req")
    out: dict[str, Any] = {k: statistics.median(s[k] for s in samples) for k in keys}
    out["errors"] = sum(s["errors"] for s in samples)
    out["requests"] = sum(s["requests"] for s in samples)
    return out


# --------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    copier = subprocess.run(
        [*copier_command(), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    uv = find_uv()
    uv_version = (
        subprocess.run(
            [uv, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if uv
        else "none (make install used venv + pip)"
    )
    distro = ""
    with contextlib.suppress(OSError):
        os_release = Path("/etc/os-release").read_text()
        match = re.search(r'^PRETTY_NAME="?([^"\n]*)', os_release, re.MULTILINE)
        distro = match.group(1) if match else ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "os": f"{distro} ({platform.system()} {platform.release()})".strip(),
        "python": platform.python_version(),
        "copier": copier,
        "uv": uv_version,
        "wrk": wrk_version.splitlines()[0].split(" [")[0] if wrk_version else "?",
        "load_start": os.getloadavg(),
    }


# --------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def render_markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        f"Measured {data['date']} on {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}; "
        f"Python {m['python']}, {m['copier']}, {m['uv']}, {m['wrk']}. "
        f"Template: {data['template']['commit']}"
        + (" with uncommitted changes" if data["template"]["dirty"] == "yes" else "")
        + ". **The machine was shared** with other work (load average "
        f"{m['load_start'][0]:.1f} at the start, {m['load_end'][0]:.1f} at the end, on "
        f"{m['cores']} cores): absolute times are pessimistic and noisy; the ratios, measured "
        "back to back in the same run, are the figures to compare.",
        "",
        f"Settings: {data['settings']}.",
        "",
    ]
    fws = data["frameworks"]

    def name(fw: str) -> str:
        title = FRAMEWORK_TITLES.get(fw, fw)
        return title if fws[fw]["enabled"] else f"{title} (not yet enabled)"

    lines += [
        "#### Render (`copier copy --defaults`, default variant)",
        "",
        "| framework | median | CPU | `copier --version` | ratio | slowest variant | target |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for fw, r in fws.items():
        x = r.get("render")
        if not x:
            lines.append(
                f"| {name(fw)} | failed: {r['errors'].get('render', '?')[:80]} | | | | | |"
            )
            continue
        slow = x["slowest"]
        fast_enough = x["median_s"] <= RENDER_MAX_S and slow["wall_s"] <= RENDER_MAX_S
        lines.append(
            f"| {name(fw)} | {x['median_s']:.2f} s | {x['median_cpu_s']:.2f} s "
            f"| {x['version_median_s']:.2f} s | {x['ratio']:.1f}x "
            f"| {slow['variant']} {slow['wall_s']:.2f} s "
            f"| {mark(fast_enough)} ≤ {RENDER_MAX_S} s; "
            f"{mark(x['ratio'] <= RENDER_MAX_RATIO)} ≤ {RENDER_MAX_RATIO:g}x |"
        )
    lines += [
        "",
        "#### Time to green (render + `make install` with a warm cache + `make test`)",
        "",
        "| framework | render | install | test | total | tests | target |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for fw, r in fws.items():
        x = r.get("green")
        if not x:
            err = r["errors"].get("green", "not run")
            lines.append(f"| {name(fw)} | failed: {err.splitlines()[0][:80]} | | | | | |")
            continue
        lines.append(
            f"| {name(fw)} | {x['render_s']:.1f} s | {x['install_s']:.1f} s "
            f"| {x['test_s']:.1f} s | {x['total_s']:.1f} s | {x['tests']} "
            f"| {mark(x['total_s'] <= GREEN_MAX_S)} ≤ {GREEN_MAX_S:g} s |"
        )
    lines += [
        "",
        (
            f"#### Served throughput (wrk, 1 thread, {CONNECTIONS} connections, "
            f"{WORKERS} workers, loopback; medians of the rounds)"
        ),
        "",
        (
            "| framework | server | app | req/s | p50 | p99 | CPU/req | vs bare (req/s) "
            "| vs bare (CPU) | target |"
        ),
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for fw, r in fws.items():
        x = r.get("serve")
        if not x:
            err = r["errors"].get("serve", "not run")
            lines.append(f"| {name(fw)} | failed: {err.splitlines()[0][:80]} | | | | | | | | |")
            continue
        bare = x["median"]["bare hello-world"]
        for _, _, label in TARGETS:
            s = x["median"][label]
            vs = s["rps"] / bare["rps"]
            vs_cpu = bare["cpu_ms_per_req"] / s["cpu_ms_per_req"]
            target = ""
            p99_ok = s["p99_ms"] < P99_MAX_MS
            if label == "starter /health":
                target = f"{mark(vs >= HEALTH_MIN_RATIO)} ≥ {HEALTH_MIN_RATIO:.0%}"
            elif label.startswith("starter /api/items"):
                target = f"{mark(vs >= ITEMS_MIN_RATIO)} ≥ {ITEMS_MIN_RATIO:.0%}"
            if label.startswith("starter"):
                target += f"; {mark(p99_ok)} p99 < {P99_MAX_MS:g} ms"
            errors = f" ({s['errors']} errors)" if s["errors"] else ""
            lines.append(
                f"| {name(fw)} | {x['server']} | {label}{errors} | {s['rps']:,.0f} "
                f"| {s['p50_ms']:.1f} ms | {s['p99_ms']:.1f} ms | {s['cpu_ms_per_req']:.2f} ms "
                f"| {vs:.0%} | {vs_cpu:.0%} | {target} |"
            )
    lines += [
        "",
        (
            "CPU/req: the server processes' user + system CPU time (from /proc) divided by "
            "the requests served; on a shared machine it varies less than requests/s. "
            "\"vs bare (CPU)\" is the bare app's CPU per request over this row's."
        ),
        "",
        "#### Versions",
        "",
        "| framework | installed |",
        "| --- | --- |",
    ]
    for fw, r in fws.items():
        versions = (r.get("serve") or {}).get("versions") or r.get("versions") or {}
        text = ", ".join(f"{k} {v}" for k, v in versions.items()) or "–"
        lines.append(f"| {name(fw)} | {text} |")
    errors = [(fw, phase, e) for fw, r in fws.items() for phase, e in r["errors"].items()]
    if errors:
        lines += ["", "#### Failures", ""]
        for fw, phase, e in errors:
            lines += [f"{name(fw)}, {phase}:", "", "```", e.strip()[-1500:], "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def render_chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fws = [fw for fw in data["frameworks"]]
    labels = [
        FRAMEWORK_TITLES.get(fw, fw) + ("" if data["frameworks"][fw]["enabled"] else "*")
        for fw in fws
    ]
    fig, axes = plt.subplots(2, 2, figsize=(14, 9.5))
    (ax_render, ax_green), (ax_rps, ax_p99) = axes
    xs = list(range(len(fws)))

    def get(fw: str, *keys: str) -> Any:
        value: Any = data["frameworks"][fw]
        for k in keys:
            if not isinstance(value, dict) or k not in value:
                return None
            value = value[k]
        return value

    # Render
    width = 0.38
    med = [get(fw, "render", "median_s") or 0 for fw in fws]
    ver = [get(fw, "render", "version_median_s") or 0 for fw in fws]
    slow = [(get(fw, "render", "slowest") or {}).get("wall_s", 0) for fw in fws]
    ax_render.bar([x - width / 2 for x in xs], ver, width, label="copier --version", color="#999")
    ax_render.bar([x + width / 2 for x in xs], med, width, label="copier copy (default)")
    ax_render.scatter(
        [x + width / 2 for x in xs], slow, marker="_", s=400, color="k", label="slowest variant"
    )
    ax_render.axhline(RENDER_MAX_S, color="r", ls="--", lw=1, label=f"target {RENDER_MAX_S} s")
    ax_render.set_title("Render time (median wall, s)")
    ax_render.legend(fontsize=8)

    # Time to green
    bottom = [0.0] * len(fws)
    for key, label in (("render_s", "render"), ("install_s", "install"), ("test_s", "make test")):
        vals = [get(fw, "green", key) or 0 for fw in fws]
        ax_green.bar(xs, vals, 0.6, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax_green.axhline(GREEN_MAX_S, color="r", ls="--", lw=1, label=f"target {GREEN_MAX_S:g} s")
    ax_green.set_title("Time to green (s)")
    ax_green.legend(fontsize=8)

    # Throughput and p99
    width = 0.2
    colors = ("#bbb", "#777", "#1f77b4", "#ff7f0e")
    for i, (_, _, label) in enumerate(TARGETS):
        rps = [(get(fw, "serve", "median", label) or {}).get("rps", 0) for fw in fws]
        p99 = [(get(fw, "serve", "median", label) or {}).get("p99_ms", 0) for fw in fws]
        offs = [x + (i - 1.5) * width for x in xs]
        ax_rps.bar(offs, rps, width, label=label, color=colors[i])
        ax_p99.bar(offs, p99, width, label=label, color=colors[i])
    ax_rps.set_title(f"Requests/s ({CONNECTIONS} connections, {WORKERS} workers)")
    ax_rps.legend(fontsize=8)
    ax_p99.axhline(P99_MAX_MS, color="r", ls="--", lw=1, label=f"target {P99_MAX_MS:g} ms")
    ax_p99.set_title("p99 latency (ms)")
    ax_p99.legend(fontsize=8)

    for ax in (ax_render, ax_green, ax_rps, ax_p99):
        ax.set_xticks(xs)
        ax.set_xticklabels(labels)
        ax.grid(axis="y", alpha=0.3)
    m = data["machine"]
    note = (
        "  (* not yet enabled)"
        if any(not r["enabled"] for r in data["frameworks"].values())
        else ""
    )
    fig.suptitle(
        f"copier-api-starter benchmarks, {data['date']}: {m['cpu']}, {m['cores']} cores "
        f"(shared, load {m['load_start'][0]:.1f}), Python {m['python']}{note}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def update_readme(markdown: str) -> bool:
    text = README.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    block = f"{README_START}\n{markdown}{README_END}"
    README.write_text(text[:start] + block + text[end + len(README_END) :])
    return True


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--frameworks",
        default=",".join(matrix.FRAMEWORKS),
        help="comma-separated frameworks (default: every framework with a template)",
    )
    p.add_argument("--render-runs", type=int, default=3, help="renders per framework (median)")
    p.add_argument(
        "--no-variants", action="store_true", help="skip rendering the non-default variants"
    )
    p.add_argument("--seconds", type=float, default=4, help="seconds per wrk measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of measurements")
    p.add_argument("--warmup", type=float, default=1, help="seconds of wrk warm-up per app")
    p.add_argument("--skip", default="", help="comma-separated phases to skip: render,green,serve")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 renders, 1 round of 2 s")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument(
        "--from-json",
        type=Path,
        help="measure nothing: rewrite the table, chart (and README block) from a results file",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.render_runs, args.seconds, args.rounds, args.warmup = 2, 2, 1, 1
        args.no_variants = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print(
            "error: wrk is not installed; on Debian/Ubuntu: sudo apt-get install wrk "
            "(other systems: https://github.com/wg/wrk)",
            file=sys.stderr,
        )
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(
            "error: matplotlib is missing; run `uv run --with matplotlib python bench/run.py`",
            file=sys.stderr,
        )
        return 2
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        write_results(data, args.out, update=args.out.resolve() == RESULTS)
        return 0
    wanted = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in matrix.FRAMEWORKS]
    if unknown:
        print(f"error: unknown framework(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    frameworks = [f for f in wanted if (ROOT / "templates" / f).is_dir()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="copier-api-bench-"))
    log(f"work directory {work}")
    data: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "settings": (
            f"{args.render_runs} renders per framework (median), "
            + ("no other variants" if args.no_variants else "every other variant once")
            + f"; wrk {args.rounds} interleaved round(s) of {args.seconds:g} s per app "
            f"after {args.warmup:g} s of warm-up; SQLite, ENVIRONMENT=production"
        ),
        "frameworks": {},
    }
    try:
        data["template"] = snapshot_template(work / "template")
        renderer = Renderer(work / "template", work)
        for fw in frameworks:
            fw_work = work / fw
            fw_work.mkdir()
            entry: dict[str, Any] = {"enabled": fw in matrix.AVAILABLE, "errors": {}}
            data["frameworks"][fw] = entry
            project: Path | None = None
            try:
                if "render" in skip:
                    project = fw_work / "render-0"
                    renderer.render(project, fw)
                else:
                    log(f"{fw}: render x{args.render_runs}")
                    entry["render"], project = bench_render(
                        fw, renderer, fw_work, args.render_runs, not args.no_variants
                    )
                    r = entry["render"]
                    log(
                        f"{fw}: render median {r['median_s']:.2f} s, copier --version "
                        f"{r['version_median_s']:.2f} s, slowest {r['slowest']['variant']} "
                        f"{r['slowest']['wall_s']:.2f} s"
                    )
            except Exception as exc:  # noqa: BLE001  (reported in the results)
                entry["errors"]["render"] = str(exc)
                log(f"{fw}: render failed: {exc}")
                continue
            try:
                if "green" in skip:
                    timed(["make", "install"], cwd=project, env=clean_env())
                else:
                    log(f"{fw}: time to green")
                    entry["green"] = bench_green(fw, renderer, project, fw_work)
                    g = entry["green"]
                    log(
                        f"{fw}: green in {g['total_s']:.1f} s (render {g['render_s']:.1f}, "
                        f"install {g['install_s']:.1f}, test {g['test_s']:.1f}: {g['tests']})"
                    )
            except Exception as exc:  # noqa: BLE001
                entry["errors"]["green"] = str(exc)
                log(f"{fw}: time to green failed: {exc}")
                if not (project / ".venv/bin/python").exists():
                    continue
            if "serve" in skip:
                continue
            try:
                log(f"{fw}: serving")
                entry["serve"] = bench_serve(
                    fw, project, fw_work, args.seconds, args.rounds, args.warmup
                )
                for label, s in entry["serve"]["median"].items():
                    log(
                        f"{fw}: {label}: {s['rps']:.0f} req/s, p50 {s['p50_ms']:.1f} ms, "
                        f"p99 {s['p99_ms']:.1f} ms, {s['cpu_ms_per_req']:.2f} CPU ms/req"
                        + (f", {s['errors']} errors" if s["errors"] else "")
                    )
            except Exception as exc:  # noqa: BLE001
                entry["errors"]["serve"] = str(exc)
                log(f"{fw}: serving failed: {exc}")
            finally:
                shutil.rmtree(fw_work / "green", ignore_errors=True)
    finally:
        data["machine"]["load_end"] = os.getloadavg()
        data["elapsed_s"] = time.monotonic() - started
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    full = set(frameworks) == {f for f in matrix.FRAMEWORKS if (ROOT / "templates" / f).is_dir()}
    readme = full and not skip and not args.quick and args.out.resolve() == RESULTS
    write_results(data, args.out, update=readme)
    log(f"done in {data['elapsed_s'] / 60:.1f} min: {args.out / 'latest.md'}")
    return 0


def write_results(data: dict[str, Any], out: Path, *, update: bool) -> None:
    """latest.json, latest.md and latest.png in ``out``; with ``update``, the README block."""
    markdown = render_markdown(data)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "latest.md").write_text(
        "### Benchmark results\n\n![benchmarks](latest.png)\n\n" + markdown
    )
    render_chart(data, out / "latest.png")
    if update and update_readme(markdown):
        log("README.md: results block updated")


if __name__ == "__main__":
    sys.exit(main())
