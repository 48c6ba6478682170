"""Schemathesis (v4 CLI) against the served /openapi.json: every check, zero failures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import harness

# Bounded so a variant takes well under a minute; raise it locally with
# CONTRACT_SCHEMATHESIS_EXAMPLES=200 for a deeper run.
MAX_EXAMPLES = int(os.environ.get("CONTRACT_SCHEMATHESIS_EXAMPLES", "25"))
TIMEOUT = 300


def test_schemathesis_finds_nothing(server: harness.Server, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    assert st.is_file(), f"schemathesis CLI not found next to {sys.executable}"
    args = [
        str(st),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261123",
        # One worker: CPython 3.11's ast.parse is not thread-safe and Hypothesis
        # parses lambdas while Schemathesis's worker threads generate data.
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    env = {"SCHEMATHESIS_HOOKS": "st_hooks", "PYTHONPATH": str(Path(__file__).parent)}
    proc = harness.run(args, cwd=tmp_path, env=env, timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f"schemathesis exited {proc.returncode}:\n{proc.stdout}\n"
        f"server log tail:\n{server.log()[-3000:]}"
    )
