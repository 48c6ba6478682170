"""Schemathesis (v4 CLI) against the served /openapi.json: every check, zero failures.

Every phase runs: examples, coverage, fuzzing and stateful, with positive *and*
negative data (``--mode all``): schema-violating requests must be refused with a
4xx problem, valid ones accepted. The stateful phase needs links between operations;
the documents declare none, and Schemathesis infers them (``Location`` of the 201,
and the item schemas). The run's NDJSON report is read back to prove that each phase
ran, that negative cases were sent, and that stateful scenarios chained requests
(a POST's item then read, replaced, patched or deleted), not merely that the CLI
exited 0. Deliberate differences between the contract and JSON Schema are in
``st_hooks.py``; what generated data cannot satisfy (a user's current password), in
``schemathesis.toml``. With needs_auth every request carries the default user's token.
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import harness

# Bounded so a variant takes well under a minute; raise them locally for a deeper run,
# e.g. CONTRACT_SCHEMATHESIS_EXAMPLES=300 CONTRACT_SCHEMATHESIS_SEED=7.
MAX_EXAMPLES = int(os.environ.get("CONTRACT_SCHEMATHESIS_EXAMPLES", "40"))
SEED = os.environ.get("CONTRACT_SCHEMATHESIS_SEED", "20261123")
TIMEOUT = 300
PHASES = ("examples", "coverage", "fuzzing", "stateful")
CONFIG = Path(__file__).with_name("schemathesis.toml")
ITEM_OPERATIONS = {f"{m} /api/items/{{item_id}}" for m in ("GET", "PUT", "PATCH", "DELETE")}
# What a run must at least show. With 40 examples and this seed the five starters give
# 220-240 negative cases and 11-25 chained scenarios; the margins allow for the frameworks.
MIN_NEGATIVE_CASES = 100
MIN_CHAINED_SCENARIOS = 5


def test_schemathesis_finds_nothing(server: harness.Server, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    assert st.is_file(), f"schemathesis CLI not found next to {sys.executable}"
    reports = tmp_path / "report"
    args = [
        str(st),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        ",".join(PHASES),
        "--mode",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
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
        "junit,ndjson",
        "--report-dir",
        str(reports),
    ]
    if server.auth:
        # Every request as the default user; Schemathesis also checks (ignored_auth) that
        # the protected operations refuse a request without it.
        args += ["--header", f"Authorization: Bearer {server.token()}"]
    env = {"SCHEMATHESIS_HOOKS": "st_hooks", "PYTHONPATH": str(Path(__file__).parent)}
    proc = harness.run(args, cwd=tmp_path, env=env, timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f"schemathesis exited {proc.returncode}:\n{proc.stdout}\n"
        f"server log tail:\n{server.log()[-3000:]}"
    )
    _check_junit(reports, proc.stdout)
    _check_phases(_events(reports), proc.stdout)


def _check_junit(reports: Path, output: str) -> None:
    (junit,) = reports.glob("junit*.xml")
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    assert tests > 0 and bad == 0, f"JUnit report: {tests} tests, {bad} failed:\n{output}"


def _events(reports: Path) -> list[tuple[str, dict[str, Any]]]:
    (ndjson,) = reports.glob("ndjson*.ndjson")
    events = []
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        ((kind, payload),) = event.items()
        events.append((kind, payload))
    return events


def _phase_name(payload: dict[str, Any]) -> str | None:
    phase = payload.get("phase")
    return phase.get("name") if isinstance(phase, dict) else phase


def _check_phases(events: list[tuple[str, dict[str, Any]]], output: str) -> None:
    """Coverage, fuzzing and stateful ran and passed; negative and chained cases were sent."""
    finished = {_phase_name(p): p.get("status") for k, p in events if k == "PhaseFinished"}
    for phase in ("coverage", "fuzzing", "stateful"):
        assert finished.get(phase) == "success", (
            f"the {phase} phase did not pass (status {finished.get(phase)!r}):\n{output}"
        )

    modes: Counter[str] = Counter()
    chained = 0
    transitions: set[tuple[str, str]] = set()
    for kind, payload in events:
        if kind != "ScenarioFinished":
            continue
        cases = payload.get("recorder", {}).get("cases", {}).values()
        for case in cases:
            meta = case.get("value", {}).get("meta", {})
            modes[meta.get("generation", {}).get("mode", "?")] += 1
        if payload.get("phase") != "stateful":
            continue
        steps = [case for case in cases if case.get("transition")]
        if steps and payload.get("status") == "success":
            chained += 1
        for case in steps:
            source, _, rest = case["transition"]["id"].partition(" -> ")
            transitions.add((source, rest.rsplit(" -> ", 1)[-1]))

    assert modes["negative"] >= MIN_NEGATIVE_CASES, (
        f"expected at least {MIN_NEGATIVE_CASES} negative cases, got {dict(modes)}:\n{output}"
    )
    assert chained >= MIN_CHAINED_SCENARIOS, (
        f"expected at least {MIN_CHAINED_SCENARIOS} stateful scenarios that follow a link, "
        f"got {chained}; links used: {sorted(transitions)}\n{output}"
    )
    # Which links a scenario follows is Hypothesis's draw, so: the created item was used
    # by at least two operations, and each item operation was reached through some link.
    from_create = {target for source, target in transitions if source == "POST /api/items"}
    reached = {target for _, target in transitions}
    assert len(from_create & ITEM_OPERATIONS) >= 2 and reached >= ITEM_OPERATIONS, (
        "stateful scenarios must follow POST /api/items to the created item, and reach "
        f"{sorted(ITEM_OPERATIONS)} through links; links used: {sorted(transitions)}\n{output}"
    )
