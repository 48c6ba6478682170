"""Where a served starter's CPU goes: py-spy samples its worker processes while wrk loads
one path, and every sample is charged to the code of its innermost Python frame (an
installed distribution such as ``sqlalchemy`` or ``starlette``, a standard-library module,
or the project's own package), and to each of the project's functions on its stack.

Only the thread that holds the GIL is sampled (``--gil``): the Python code that runs. A
worker waiting (for a connection, for the client to close, for the GIL) is not charged,
nor are system calls and native code that let the GIL go, such as SQLite's queries: they
are the same for the bare app and the framework-free floor, whose rows measure them.

These are the profiles behind a missed target: the share of the CPU that each library
takes, and which of the project's functions lead there. py-spy comes from PyPI with the
benchmark (``make bench``); it reads the workers' memory, so it needs ptrace rights over
them (root, or ``kernel.yama.ptrace_scope=0``). Without them, the results say so instead
of showing a profile.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import CommandError, harness

# Samples a second per worker: enough for shares to the percent over a few seconds,
# few enough that py-spy's own CPU barely disturbs the two workers it samples.
RATE = 400
# How many owners and functions a profile keeps.
TOP = 8
_STDLIB = f"/lib/python{sys.version_info.major}.{sys.version_info.minor}/"


def py_spy() -> str | None:
    """The py-spy executable: on PATH, or beside this interpreter (``uv run --with py-spy``)."""
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


def owner(path: str, project: Path) -> str:
    """Whose code a source file is: a distribution's top-level module, ``stdlib <module>``,
    or ``project`` for the project's own package."""
    if "/site-packages/" in path:
        top = path.split("/site-packages/", 1)[1].split("/", 1)[0]
        return top.removesuffix(".py")
    if path.startswith(str(project / ".venv" / "bin")):
        return Path(path).stem  # a module installed as a script (bottle.py)
    if path.startswith(str(project)):
        return "project"
    if _STDLIB in path:
        top = path.split(_STDLIB, 1)[1].split("/", 1)[0]
        return f"stdlib {top.removesuffix('.py')}"
    return "other"


def _frame(text: str) -> tuple[str, str]:
    """(function, path) of one frame as py-spy's raw format writes it with
    ``--full-filenames``: ``function (path:line)``."""
    function, _, rest = text.rpartition(" (")
    path = rest.rstrip(")").rsplit(":", 1)[0]
    return function, path


def summarise(raw: str, project: Path) -> dict[str, Any]:
    """Shares of the samples by the owner of their innermost frame (self time), and by the
    project's functions anywhere on their stack (inclusive time)."""
    by_owner: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += count
        by_owner[owner(frames[-1][1], project)] += count
        seen = set()
        for function, path in frames:
            if owner(path, project) == "project":
                seen.add(f"{Path(path).stem}.{function}")
        for name in seen:
            own[name] += count
    if not total:
        return {"samples": 0, "owners": [], "own": []}
    return {
        "samples": total,
        "owners": [(name, n / total) for name, n in by_owner.most_common(TOP)],
        "own": [(name, n / total) for name, n in own.most_common(TOP)],
    }


def profile(
    server: harness.Server,
    path: str,
    seconds: int,
    project: Path,
    load: Callable[[], object],
    work: Path,
) -> dict[str, Any]:
    """Sample ``server``'s workers for ``seconds`` while ``load()`` runs wrk on ``path``."""
    exe = py_spy()
    if exe is None:
        return {"error": "py-spy is not installed (make bench runs with it)"}
    assert server.proc is not None
    outputs = []
    procs = []
    for pid in harness.group_leaves(server.proc.pid):
        out = work / f"py-spy-{pid}.txt"
        outputs.append(out)
        procs.append(
            subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(RATE),
                    "--duration",
                    str(seconds),
                    "--format",
                    "raw",
                    "--full-filenames",
                    "--gil",
                    "--nonblocking",
                    "--output",
                    str(out),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    load()
    errors = []
    for proc in procs:
        output, _ = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            errors.append(output.strip().splitlines()[-1] if output.strip() else "failed")
    raw = "\n".join(out.read_text() for out in outputs if out.exists())
    if errors and not raw:
        return {"error": f"py-spy: {errors[0]}"}
    result = summarise(raw, project)
    if not result["samples"]:
        raise CommandError(f"py-spy took no samples of {path}")
    return result
