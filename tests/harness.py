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
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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
    "ACCESS_TOKEN_MINUTES",
    "ALLOW_SIGNUP",
    # make createuser's input
    "USERNAME",
    "PASSWORD",
    "ADMIN",
    "ACTIVE",
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
    # A project's own pytest keeps its temporary directories apart: each pytest prunes old
    # ones under a shared root, and two pruning the same directory at once fail.
    own_tmp = tempfile.mkdtemp(prefix="pytest-root-")
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=base_env({"PYTEST_DEBUG_TEMPROOT": own_tmp, **(env or {})}),
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
        shutil.rmtree(own_tmp, ignore_errors=True)
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


def _answered(project: Path, line: str) -> bool:
    answers = project / ".copier-answers.yml"
    return answers.is_file() and line in answers.read_text().splitlines()


def has_background_jobs(project: Path) -> bool:
    """Whether the rendered project was answered ``background_jobs: true``."""
    return _answered(project, "background_jobs: true")


def has_auth(project: Path) -> bool:
    """Whether the rendered project was answered ``needs_auth: true``."""
    return _answered(project, "needs_auth: true")


# --------------------------------------------------------------------------- users (needs_auth)

# Every server of a project with needs_auth signs its tokens with this key, so that the
# tests can forge tokens (tests/contract/test_auth.py) and a token stays good on every
# server of the same database. At least 32 bytes, as the starters require.
SECRET_KEY = "contract-suite-signing-key-0123456789abcdef"
# The servers' token lifetime: longer than any variant's run, so the tokens fetched once
# stay valid. (A server started with ACCESS_TOKEN_MINUTES=None shows the default.)
TOKEN_MINUTES = 720
# The user every contract test acts as, unless it asks for another.
DEFAULT_USER = "contract"
CREATED = re.compile(r"^created user (?P<username>\S+) \(id (?P<id>\d+)\)$", re.MULTILINE)


@dataclass
class User:
    """A user of one database, created with `make createuser`."""

    username: str
    password: str
    id: int
    is_admin: bool = False
    is_active: bool = True
    # SECRET_KEY (None: the server's development default) -> the token fetched with it
    tokens: dict[str | None, str] = field(default_factory=dict)


# database URL -> username -> User: the users created so far, one `make createuser`
# per user and database, whichever server of that database asks.
_users: dict[str, dict[str, User]] = {}
_users_lock = threading.RLock()


def createuser(
    project: Path,
    env: dict[str, str | None],
    username: str,
    password: str,
    *,
    admin: bool = False,
    active: bool = True,
) -> User:
    """`make createuser` with USERNAME/PASSWORD (ADMIN, ACTIVE) from the environment
    (``env``: the server's: DATABASE_URL, SECRET_KEY...); returns the user it printed."""
    out = make(
        project,
        "createuser",
        env={
            **env,
            "USERNAME": username,
            "PASSWORD": password,
            "ADMIN": "true" if admin else None,
            "ACTIVE": None if active else "false",
        },
        timeout=120,
    )
    m = CREATED.search(out)
    assert m and m["username"] == username, (
        f"`make createuser` did not print `created user {username} (id N)`:\n{out}"
    )
    user = User(username, password, int(m["id"]), is_admin=admin, is_active=active)
    database_url = env.get("DATABASE_URL")
    if database_url:
        with _users_lock:
            _users.setdefault(database_url, {})[username] = user
    return user


def forge_token(secret_key: str, user_id: int) -> str:
    """A token as the starters issue it (HS256; sub, iat, exp), made here."""
    import jwt  # the dev group's PyJWT, imported when first needed

    now = int(time.time())
    claims = {"sub": str(user_id), "iat": now, "exp": now + TOKEN_MINUTES * 60}
    return jwt.encode(claims, secret_key, algorithm="HS256")


def fetch_token(base_url: str, username: str, password: str) -> str:
    """POST /api/auth/token (the password grant); the access token."""
    r = httpx.post(
        f"{base_url}/api/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
        timeout=60,
    )
    assert r.status_code == 200, (
        f"POST {base_url}/api/auth/token for {username!r}: {r.status_code} {r.text[:500]}"
    )
    return str(r.json()["access_token"])


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


def group_leaves(pgid: int) -> list[int]:
    """Live processes of a process group that started no other member: a server's workers
    (make, the shell and the master each started one)."""
    stats = [(pid, fields) for pid, fields in _group_stats(pgid) if fields[0] != "Z"]
    parents = {int(fields[1]) for _, fields in stats}
    return [pid for pid, _ in stats if pid not in parents]


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
        self.auth = has_auth(project)
        self.env: dict[str, str | None] = {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "DATABASE_URL": database_url,
            "ENVIRONMENT": "production",
            "SECRET_KEY": SECRET_KEY if self.auth else secrets.token_urlsafe(32),
        }
        if self.auth:
            self.env["ACCESS_TOKEN_MINUTES"] = str(TOKEN_MINUTES)
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

    def client(self, *, authenticated: bool = True, **kwargs: Any) -> httpx.Client:
        """An HTTP client for this server. With needs_auth it sends the default user's
        token on every /api request but the token endpoint's (``authenticated=False``:
        none), fetching it on the first; ``auth=`` replaces that."""
        kwargs.setdefault("timeout", 30.0)
        if self.auth and authenticated:
            kwargs.setdefault("auth", self.bearer())
        return httpx.Client(base_url=self.base_url, **kwargs)

    # -- users and tokens (needs_auth)

    def user(
        self,
        username: str = DEFAULT_USER,
        *,
        admin: bool = False,
        active: bool = True,
        password: str | None = None,
    ) -> User:
        """The user of this server's database named ``username``: created with `make
        createuser` the first time any server of that database asks for it."""
        assert self.auth, "a user of a project without needs_auth"
        database_url = str(self.env["DATABASE_URL"])
        with _users_lock:
            known = _users.get(database_url, {}).get(username)
            if known is not None:
                return known
            return createuser(
                self.project,
                self.env,
                username,
                password or f"{username}-password-{secrets.token_hex(4)}",
                admin=admin,
                active=active,
            )

    def token(self, user: User | None = None) -> str:
        """A token of ``user`` (the default user) from this server's token endpoint,
        fetched once per user, database and SECRET_KEY."""
        key = self.env.get("SECRET_KEY")
        if user is None and not self.migrate and key and not self._has_default_user():
            # A database this server did not migrate (unreachable, or migrations pending):
            # no user can be made there yet, so a well-signed token of the first user's,
            # which the server can only check against the database (a 503, not a 401).
            return forge_token(key, 1)
        user = user or self.user()
        with _users_lock:
            if key not in user.tokens:
                user.tokens[key] = fetch_token(self.base_url, user.username, user.password)
            return user.tokens[key]

    def _has_default_user(self) -> bool:
        with _users_lock:
            return DEFAULT_USER in _users.get(str(self.env["DATABASE_URL"]), {})

    def auth_headers(self, user: User | None = None) -> dict[str, str]:
        """``Authorization: Bearer <token>`` with needs_auth, else nothing."""
        if not self.auth:
            return {}
        return {"Authorization": f"Bearer {self.token(user)}"}

    def bearer(self, user: User | None = None) -> httpx.Auth:
        """httpx auth sending ``user``'s token (the default user's) to the API paths;
        the user and token are made on the first request that needs them."""
        return _Bearer(self, user)


class _Bearer(httpx.Auth):
    """The token on /api requests (not the token endpoint's), fetched when first needed."""

    def __init__(self, server: Server, user: User | None) -> None:
        self.server = server
        self.user = user

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        path = request.url.path
        if (
            request.method != "OPTIONS"  # a CORS preflight carries no credentials
            and path.startswith("/api/")
            and not path.startswith("/api/auth/")
            and "authorization" not in request.headers
        ):
            request.headers["Authorization"] = f"Bearer {self.server.token(self.user)}"
        yield request


@contextlib.contextmanager
def serving(project: Path, **kwargs: Any) -> Iterator[Server]:
    with Server(project, **kwargs) as server:
        yield server
