"""A throwaway PostgreSQL cluster for the template's tests.

One cluster per pytest process (per xdist worker), started on first use and
stopped at session end (and at interpreter exit, should teardown be skipped).
Each variant gets a fresh database from ``create_database()``.

The tests run as root and PostgreSQL refuses to run as root, so ``initdb``,
``pg_ctl`` and ``postgres`` run as the ``postgres`` user through ``runuser``;
the cluster lives in its own directory under /tmp owned by that user (pytest's
base temp directory is private to root).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "postgres"  # the OS user that owns the cluster
ROLE = "contract"
PASSWORD = "contract-pw-7Qx"  # a password in every URL: the apps must pass it through


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries or the postgres OS user are missing."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bindir() -> Path:
    """Where initdb and pg_ctl live: pg_config --bindir, /usr/lib/postgresql/*/bin, PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            candidates.append(Path(out))
        except (subprocess.SubprocessError, OSError):
            pass
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        candidates.append(Path(d))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    for d in candidates:
        if all((d / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return d
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found via "
        "`pg_config --bindir`, /usr/lib/postgresql/*/bin or PATH; install PostgreSQL 15 "
        "(.ci/run does: apt-get install postgresql-15)"
    )


@dataclass
class PostgresCluster:
    bindir: Path
    root: Path
    port: int
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: bool = False
    _counter: int = 0

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def _as_postgres(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin")
        if runuser is None:
            raise PostgresUnavailable("runuser (util-linux) not found: cannot start PostgreSQL")
        cmd = [runuser, "-u", PG_USER, "--", *args]
        proc = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"PATH": f"{self.bindir}:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
            cwd=self.root,
        )
        if proc.returncode != 0:
            log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{log}"
            )
        return proc

    def start(self) -> None:
        self.socket_dir.mkdir()
        pw = self.root / "pwfile"
        pw.write_text("postgres-superuser-pw\n")
        entry = pwd.getpwnam(PG_USER)
        for p in (self.root, self.socket_dir, pw):
            os.chown(p, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)
        self._as_postgres(
            str(self.bindir / "initdb"),
            "-D", str(self.data_dir),
            "-U", "postgres",
            "--pwfile", str(pw),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E", "UTF8",
            "--locale=C.UTF-8",
        )  # fmt: skip
        self._pg_ctl_start()
        self.psql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'")

    def _pg_ctl_start(self) -> None:
        opts = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c max_connections=300",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c shared_buffers=32MB",
            ]
        )
        self._as_postgres(
            str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
            "-o", opts, "-w", "-t", "60", "start",
        )  # fmt: skip
        self._running = True

    def halt(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m fast|immediate``) but keep its data and port.

        ``fast`` terminates every client connection and shuts down cleanly; ``immediate``
        kills the server processes outright (crash recovery runs on the next start).
        ``resume()`` starts it again on the same port and data directory.
        """
        self._as_postgres(
            str(self.bindir / "pg_ctl"), "-D", str(self.data_dir),
            "-m", mode, "-w", "-t", "60", "stop", timeout=90,
        )  # fmt: skip
        self._running = False

    def resume(self) -> None:
        """Start a server stopped by ``halt()`` again, same port, same data."""
        self._pg_ctl_start()

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket; returns psql's output."""
        proc = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                dbname,
                "-c",
                sql,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def create_database(self) -> str:
        """A fresh, empty database owned by the test role; returns its URL."""
        with self._lock:
            self._counter += 1
            name = f"contract_{self._counter}_{uuid.uuid4().hex[:8]}"
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return self.url(name)

    def url(self, dbname: str) -> str:
        return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        if self._running:
            self._running = False
            try:
                self._as_postgres(
                    str(self.bindir / "pg_ctl"), "-D", str(self.data_dir),
                    "-m", "immediate", "-w", "-t", "60", "stop", timeout=90,
                )  # fmt: skip
            except (RuntimeError, subprocess.SubprocessError):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


_cluster: PostgresCluster | None = None
_cluster_error: BaseException | None = None
_cluster_lock = threading.Lock()


def cluster() -> PostgresCluster:
    """The process-wide cluster, started on first use."""
    global _cluster, _cluster_error
    with _cluster_lock:
        if _cluster is not None:
            return _cluster
        if _cluster_error is not None:
            raise _cluster_error
        try:
            c = new_cluster()
        except BaseException as exc:
            _cluster_error = exc
            raise
        _cluster = c
        return c


def new_cluster() -> PostgresCluster:
    """A new, started cluster; the caller stops it (so does interpreter exit).

    ``cluster()`` is the worker's shared one; a test that stops and restarts PostgreSQL
    takes a cluster of its own, so the other tests of the worker are unaffected.
    """
    bindir = find_bindir()
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"the OS user {PG_USER!r} does not exist; install PostgreSQL 15 "
            "(.ci/run does) or create the user"
        ) from None
    root = Path(tempfile.mkdtemp(prefix="contract-pg-", dir="/tmp"))
    c = PostgresCluster(bindir=bindir, root=root, port=_free_port())
    atexit.register(c.stop)
    try:
        c.start()
    except BaseException:
        c.stop()
        raise
    return c


def stop_cluster() -> None:
    global _cluster
    with _cluster_lock:
        if _cluster is not None:
            _cluster.stop()
            _cluster = None
