"""Throwaway Redis servers for the tests of projects with background jobs.

Each one is Debian's ``redis-server`` on a free loopback port, with no persistence
(``--save '' --appendonly no``), in its own process group. ``stop()`` and ``start()``
again on the same port stand for an outage and the return of Redis. ``shared()`` is
the one every server of this pytest process uses unless a test starts its own; it is
stopped at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path


class RedisUnavailable(RuntimeError):
    """redis-server is not installed."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server on 127.0.0.1; ``url`` is its REDIS_URL."""

    def __init__(self, directory: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        self.binary = binary
        self.directory = directory or Path(tempfile.mkdtemp(prefix="redis-"))
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> RedisServer:
        """Start it (again, on the same port) and wait until it answers PING."""
        assert self.proc is None, "already running"
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _running.add(self)
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop it at once (SIGKILL: an outage, not a shutdown). Idempotent."""
        proc, self.proc = self.proc, None
        _running.discard(self)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


_running: set[RedisServer] = set()
_shared: RedisServer | None = None
_lock = threading.Lock()


def shared() -> RedisServer:
    """This process's Redis for every project with background jobs (started on first use)."""
    global _shared
    with _lock:
        if _shared is None or _shared.proc is None:
            _shared = RedisServer().start()
        return _shared


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()
