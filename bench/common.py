"""What every phase of the benchmark shares: paths, the fixed settings and the targets,
progress lines, timed commands.

The template's test harness (``tests/harness.py``) provides the clean environment,
free ports, process groups and servers; this module puts ``tests/`` on ``sys.path``
and imports it and ``tests/matrix.py`` for the others.
"""

from __future__ import annotations

import resource
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APPS = BENCH / "apps"
RESULTS = BENCH / "results"
WRK_SCRIPT = BENCH / "wrk_report.lua"
README = ROOT / "README.md"

sys.path.insert(0, str(ROOT / "tests"))
# The other modules import these two from here, once the path is set.
import harness  # tests/harness.py: environment, ports, process groups, servers
import matrix  # noqa: F401  tests/matrix.py: FRAMEWORKS, AVAILABLE, all_variants
import postgres  # noqa: F401  tests/postgres.py: a PostgreSQL server of the bench's own

# The targets of the issues; reported, never asserted.
RENDER_MAX_S = 1.5
RENDER_MAX_RATIO = 3.0
GREEN_MAX_S = 30.0
HEALTH_MIN_RATIO = 0.80
ITEMS_MIN_RATIO = 0.30
P99_MAX_MS = 50.0
CONNECTIONS = 32
WORKERS = 2
# Items in the benchmark's table, listed a page at a time: more than a page, so that the
# page measured is not the last one (a last page can know its total without counting).
ITEMS = 60
PAGE = 20
LIST = f"/api/items?limit={PAGE}"

# What each database's round measures, in order: (server role, path, label). "floor" and
# "bare" are the baselines (bench/apps) under the starter's own server command line;
# "starter" is the framework's default variant without users and tokens (as the starters
# were before `needs_auth`, so that the rows stay comparable across runs), metrics on and
# traces off (no OTLP endpoint); "traced" the same project exporting every request's spans
# to a local OTLP sink; "unobserved" the same options without observability: together they
# show what metrics and tracing cost per request. "auth" is the default variant (users and
# tokens on), its list requested with a bearer token, to show what authentication costs.
# "async" is the same options with async views (`needs_async`), for the frameworks that
# have them, on SQLite and on PostgreSQL.
# "gthread" is the starter's own gunicorn command line with threaded workers
# (`GTHREAD_ARGS`), measured only where the starter serves with gunicorn: which worker
# class serves the list better is decided by this row, not by a hello-world.
TARGETS = {
    "sqlite": (
        ("floor", "/health", "framework-free floor"),
        ("bare", "/health", "bare hello-world"),
        ("floor", LIST, f"framework-free floor {LIST}"),
        ("starter", "/health", "starter /health"),
        ("starter", LIST, f"starter {LIST}"),
        ("unobserved", "/health", "starter without observability /health"),
        ("unobserved", LIST, f"starter without observability {LIST}"),
        ("traced", "/health", "starter exporting traces /health"),
        ("traced", LIST, f"starter exporting traces {LIST}"),
        ("auth", LIST, f"starter with users and tokens {LIST}"),
        ("async", LIST, f"starter with async views {LIST}"),
        ("gthread", LIST, f"starter with gthread workers {LIST}"),
    ),
    "postgresql": (
        ("floor", LIST, f"framework-free floor {LIST}"),
        ("starter", "/health", "starter /health"),
        ("starter", LIST, f"starter {LIST}"),
        ("async", LIST, f"starter with async views {LIST}"),
        ("gthread", LIST, f"starter with gthread workers {LIST}"),
    ),
}
# Appended to the starter's gunicorn command line for the "gthread" role: the same
# number of worker processes, each serving up to 4 requests at a time on its threads.
GTHREAD_ARGS = ("--worker-class", "gthread", "--threads", "4")


def target_labels(database: str) -> dict[tuple[str, str], str]:
    """The label of each (server role, path) measured on ``database``."""
    return {(role, path): label for role, path, label in TARGETS[database]}


# What py-spy profiles after the rounds (bench/profiles.py), per database: (role, path).
PROFILED = {
    "sqlite": (("starter", "/health"), ("starter", LIST), ("auth", LIST), ("async", LIST)),
    "postgresql": (("starter", LIST), ("async", LIST)),
}
DATABASE_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
# The roles whose project has users and tokens: a database of their own (their schema has
# the users' tables), a user made with `make createuser`, and wrk sends its token.
SIGNED_IN = frozenset({"auth"})


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


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


def timed(
    args: list[str], cwd: Path, env: dict[str, str | None] | None = None, timeout: float = 900
) -> Timed:
    """Run a command in the harness's clean environment plus ``env``, in its own process
    group; wall time and CPU time (user + system, of the command and every process it
    waited for). Raises CommandError on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = harness.run(args, cwd=cwd, env=env, timeout=timeout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = Timed(wall, cpu, proc.stdout, proc.returncode)
    if proc.returncode != 0:
        tail = "\n".join(result.output.splitlines()[-25:])
        raise CommandError(f"`{shlex.join(args)}` exited with {proc.returncode}:\n{tail}")
    return result
