"""Render, install and serve generated projects for the template's tests.

- ``render(variant, dest)`` renders the working tree of the template (``vcs_ref="HEAD"``).
- ``make(project, target)`` runs a Makefile target in a clean, explicit environment.
- ``installed_project(variant, tmp_path_factory)`` renders + ``make install``s a variant
  once per pytest process (per xdist worker) and caches it, so ``test_generated.py``,
  the contract suite and schemathesis share one installed project.
- ``Server`` runs ``make migrate`` then ``make serve`` on a free port and stops it with
  SIGTERM; it never leaves processes behind.
- ``parametrize_variants(metafunc)`` parametrizes the ``variant`` argument with the
  sample (or, with ``--full-matrix``, every valid combination) and puts each variant's
  tests in one xdist group (run with ``-n 2 --dist loadgroup``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import httpx
import matrix
import pytest
import redis_server
from matrix import TEMPLATE_ROOT, Variant

INSTALL_TIMEOUT = 900
MAKE_TIMEOUT = 900


# --------------------------------------------------------------------------- environment


def find_uv() -> str | None:
    """uv's executable: on PATH, else where the template's Makefile installs it."""
    for candidate in (
        shutil.which("uv"),
        "/tmp/tools/bin/uv",
        str(TEMPLATE_ROOT / ".tools/bin/uv"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def uv_dir() -> str | None:
    """The directory holding uv, so that the generated ``make install`` uses it."""
    uv = find_uv()
    return str(Path(uv).parent) if uv else None


# Variables passed through from the caller: package index and certificate settings
# (a CI mirror), nothing that changes what the generated project does.
_PASS_THROUGH = re.compile(r"^(UV_|PIP_)|^(SSL_CERT_FILE|SSL_CERT_DIR|TMPDIR)$")
# The generated project's own configuration must never leak in from the caller.
_PROJECT_VARS = {
    "DATABASE_URL",
    "TEST_DATABASE_URL",
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "ENVIRONMENT",
    "SECRET_KEY",
    "LOG_LEVEL",
    "CORS_ORIGINS",
    "ADMIN_USERNAME",
    "ADMIN_PASSWORD",
    "REDIS_URL",
    "JOB_VISIBILITY_TIMEOUT",
}


def base_env(extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """A clean environment: PATH (system dirs, then uv's), HOME, a UTF-8 locale.

    ``extra`` adds variables; a value of None removes one.
    """
    path = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    uv = uv_dir()
    if uv and uv not in path:
        # After the system dirs: uv's dir may be a venv whose python3 we do not want.
        path.append(uv)
    env = {
        "PATH": ":".join(path),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "NO_COLOR": "1",
    }
    for key, value in os.environ.items():
        if _PASS_THROUGH.search(key) and key not in _PROJECT_VARS:
            env[key] = value
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# --------------------------------------------------------------------------- render / make


def render(variant: Variant, dest: Path, *, extra_data: dict[str, Any] | None = None) -> Path:
    """Render ``variant`` from the template's working tree into ``dest``; returns ``dest``."""
    import copier  # imported lazily: collection stays fast
    import copier.errors

    data = dict(variant.answers)
    data["available_frameworks"] = matrix.available_frameworks()
    data.update(extra_data or {})
    dest = Path(dest)
    # The root conftest isolates Copier's user settings per test; session-scoped
    # rendering happens before that fixture, so isolate here as well.
    settings = dest.parent / f".copier-settings-{dest.name}.yml"
    settings.write_text("{}\n")  # an empty file is not a valid settings mapping
    previous = os.environ.get("COPIER_SETTINGS_PATH")
    os.environ["COPIER_SETTINGS_PATH"] = str(settings)
    try:
        with warnings.catch_warnings():
            # "Dirty template changes included automatically": exactly what we want here.
            warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
            copier.run_copy(
                str(TEMPLATE_ROOT),
                str(dest),
                data=data,
                defaults=True,
                vcs_ref="HEAD",
                quiet=True,
                unsafe=False,
            )
    finally:
        if previous is None:
            os.environ.pop("COPIER_SETTINGS_PATH", None)
        else:
            os.environ["COPIER_SETTINGS_PATH"] = previous
    return dest


def run(
    args: list[str],
    cwd: Path,
    env: dict[str, str | None] | None = None,
    timeout: float = MAKE_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a command in the clean environment, stdout+stderr captured, exit code not checked.

    The command runs in its own process group; on timeout the whole group is killed
    and an AssertionError shows the output so far.
    """
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=base_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _live_groups.add(proc.pid)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, _ = proc.communicate()
        raise AssertionError(
            f"`{' '.join(args)}` in {cwd} did not finish within {timeout:.0f}s; output:\n"
            + out.decode(errors="replace")
        ) from None
    except BaseException:
        _kill_group(proc.pid)
        proc.wait()
        raise
    finally:
        # Nothing the command started may outlive it.
        if group_members(proc.pid):
            _kill_group(proc.pid)
        _live_groups.discard(proc.pid)
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(errors="replace"))


def make(
    project: Path,
    target: str,
    env: dict[str, str | None] | None = None,
    timeout: float = MAKE_TIMEOUT,
) -> str:
    """``make <target>`` in ``project``; returns the output, raises showing it on failure."""
    proc = run(["make", target], cwd=project, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"`make {target}` failed with exit code {proc.returncode} in {project}; output:\n"
            f"{proc.stdout}"
        )
    return proc.stdout


def make_targets(project: Path) -> set[str]:
    """The explicit targets the project's Makefile defines."""
    text = (project / "Makefile").read_text()
    targets: set[str] = set()
    for m in re.finditer(
        r"^([A-Za-z0-9_.-]+(?:[ \t]+[A-Za-z0-9_.-]+)*)[ \t]*:(?!=)", text, re.MULTILINE
    ):
        targets.update(m.group(1).split())
    return targets


def has_background_jobs(project: Path) -> bool:
    """Whether the rendered project was answered ``background_jobs: true``."""
    answers = project / ".copier-answers.yml"
    return answers.is_file() and "background_jobs: true" in answers.read_text()


# --------------------------------------------------------------------------- project cache

_projects: dict[str, Path] = {}
_project_errors: dict[str, str] = {}
_projects_lock = threading.Lock()


def installed_project(variant: Variant, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The variant rendered and ``make install``ed, once per pytest process."""
    with _projects_lock:
        if variant.id in _projects:
            return _projects[variant.id]
        if variant.id in _project_errors:
            raise AssertionError(
                f"{variant.id} could not be rendered/installed (see the first failure):\n"
                + _project_errors[variant.id]
            )
        try:
            base = tmp_path_factory.mktemp(variant.id)
            project = render(variant, base / "contract-api")
            make(project, "install", timeout=INSTALL_TIMEOUT)
        except BaseException as exc:
            _project_errors[variant.id] = f"{type(exc).__name__}: {exc}"
            raise
        _projects[variant.id] = project
        return project


def variant_tmp(tmp_path_factory: pytest.TempPathFactory, variant: Variant, name: str) -> Path:
    """A fresh scratch directory for one variant (databases, logs)."""
    return tmp_path_factory.mktemp(f"{variant.id}-{name}")


# --------------------------------------------------------------------------- parametrization


def only_database(database: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit a test to the variants of one database (instead of skipping the others)."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn._contract_database = database  # type: ignore[attr-defined]
        return fn

    return mark


def only_if(
    predicate: Callable[[Variant], bool],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit a test to the variants for which ``predicate`` holds (e.g. needs_admin)."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn._contract_predicate = predicate  # type: ignore[attr-defined]
        return fn

    return mark


def once_per_framework(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a costly test on one variant per framework in the sample (the first that the
    test's other limits allow: the default variant, unless ``only_if`` says otherwise),
    and on every variant with ``--full-matrix``."""
    fn._contract_once = True  # type: ignore[attr-defined]
    return fn


def parametrize_variants(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``variant`` (session scope, one xdist group per variant)."""
    if "variant" not in metafunc.fixturenames:
        return
    full = bool(metafunc.config.getoption("--full-matrix", default=False))
    variants = matrix.selected_variants(full)
    fn = metafunc.function
    database = getattr(fn, "_contract_database", None)
    if database:
        variants = [v for v in variants if v.database == database]
    predicate = getattr(fn, "_contract_predicate", None)
    if predicate:
        variants = [v for v in variants if predicate(v)]
    if getattr(fn, "_contract_once", False) and not full:
        firsts: dict[str, Variant] = {}
        for v in variants:
            firsts.setdefault(v.framework, v)
        variants = list(firsts.values())
    metafunc.parametrize(
        "variant",
        [pytest.param(v, id=v.id, marks=pytest.mark.xdist_group(v.id)) for v in variants],
        scope="session",
    )


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    return free_port()


def _group_stats(pgid: int) -> Iterator[tuple[int, list[str]]]:
    """(pid, fields of /proc/<pid>/stat after the command name) of a process group."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid:
            yield int(entry.name), fields


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    return [pid for pid, fields in _group_stats(pgid) if fields[0] != "Z"]


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time used so far by the processes of a process group."""
    ticks = sum(int(f[11]) + int(f[12]) for _, f in _group_stats(pgid) if len(f) > 12)
    return ticks / _CLK_TCK


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


_live_groups: set[int] = set()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@atexit.register
def _kill_leftovers() -> None:
    for pgid in list(_live_groups):
        _kill_group(pgid)


class Server:
    """``make migrate`` + ``make serve`` of a project on a free port (or ``port``).

    Environment: ``HOST=127.0.0.1``, a free ``PORT``, ``WEB_CONCURRENCY=2``,
    ``DATABASE_URL``, ``ENVIRONMENT=production``, a random ``SECRET_KEY``, then
    ``env`` (a value of None removes a variable). Output goes to ``log_path``.
    ``prefix`` runs ``make serve`` through a command that execs it (e.g. ``setpriv ...``);
    ``make migrate`` runs without it. ``command`` replaces ``make serve`` by another
    server command line, run from the project's directory.

    Stopping sends SIGTERM to every process of the server's process group except
    ``make`` itself (GNU make, when signalled, exits by the signal whatever its
    child does), so ``returncode`` is the server's own exit status as make
    reports it; whatever is still running after that is killed and listed in
    ``leftovers``. A ``command`` has no make in front: all its processes get SIGTERM.
    """

    def __init__(
        self,
        project: Path,
        *,
        database_url: str,
        log_path: Path,
        env: dict[str, str | None] | None = None,
        migrate: bool = True,
        startup_timeout: float = 90,
        stop_timeout: float = 30,
        prefix: Sequence[str] = (),
        command: Sequence[str] | None = None,
        port: int | None = None,
    ) -> None:
        self.project = project
        self.prefix = list(prefix)
        self.command = list(command) if command is not None else None
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.migrate = migrate
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.env: dict[str, str | None] = {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "DATABASE_URL": database_url,
            "ENVIRONMENT": "production",
            "SECRET_KEY": secrets.token_urlsafe(32),
        }
        if has_background_jobs(project) and "REDIS_URL" not in (env or {}):
            # A project with background jobs needs Redis to be ready: this process's own.
            self.env["REDIS_URL"] = redis_server.shared().url
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.leftovers: list[str] = []
        self.stop_problem: str | None = None
        self._log_file: Any = None

    # -- lifecycle

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.migrate and "migrate" in make_targets(self.project):
            make(self.project, "migrate", env=self.env, timeout=300)
        self._log_file = open(self.log_path, "ab", buffering=0)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*self.prefix, *(self.command or ["make", "serve"])],
            cwd=self.project,
            env=base_env(self.env),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _live_groups.add(self.proc.pid)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer"
        what = "make serve" if self.command is None else " ".join(self.command)
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"`{what}` exited with {self.proc.returncode} before /health "
                        f"answered; log:\n{self.log()}"
                    )
                try:
                    r = client.get(f"{self.base_url}/health")
                    if r.status_code == 200:
                        return
                    last = f"{r.status_code} {r.text[:300]}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.2)
        raise AssertionError(
            f"`{what}` did not answer GET /health with 200 within {self.startup_timeout:.0f}s "
            f"(last: {last}); log:\n{self.log()}"
        )

    def terminate(self) -> None:
        """Send SIGTERM to the server processes (not to make); does not wait."""
        assert self.proc is not None
        pgid = self.proc.pid
        for pid in group_members(pgid):
            if pid != self.proc.pid or self.command is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for ``make serve`` to exit; returns its exit code."""
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout=timeout)
        return self.returncode

    def stop(self) -> int | None:
        """SIGTERM, bounded wait, then kill anything left. Idempotent."""
        proc = self.proc
        if proc is None:
            return self.returncode
        pgid = proc.pid
        try:
            if proc.poll() is None:
                self.terminate()
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    self.stop_problem = (
                        f"the server did not exit within {self.stop_timeout:.0f}s of SIGTERM"
                    )
                    _kill_group(pgid)
                    proc.wait(timeout=30)
            self.returncode = proc.returncode
            # Give workers that are exiting on their own a moment, then kill the rest.
            deadline = time.monotonic() + 5
            while group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = group_members(pgid)
            if left:
                self.leftovers = [f"{pid}: {_cmdline(pid)}" for pid in left]
                _kill_group(pgid)
                deadline = time.monotonic() + 10
                while group_members(pgid) and time.monotonic() < deadline:
                    time.sleep(0.1)
        finally:
            _live_groups.discard(pgid)
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            self.proc = None
        return self.returncode

    # -- helpers

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.base_url, **kwargs)


@contextlib.contextmanager
def serving(project: Path, **kwargs: Any) -> Iterator[Server]:
    with Server(project, **kwargs) as server:
        yield server
