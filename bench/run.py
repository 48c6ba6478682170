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
   ``ENVIRONMENT=production``, 60 items, pages of 20; the default variant with ``needs_auth=false``,
   as the starters were before users and tokens, so the rows stay comparable), the same
   starter without observability, the default variant (users and tokens on) listing its
   user's items with a bearer token (a user made by ``make createuser``), the same
   options with async views (FastAPI, Flask), the gunicorn starters' list under
   ``gthread`` workers (``GTHREAD_ARGS``), the
   framework's bare hello-world app (``bench/apps/<framework>_hello.py``) and a
   framework-free ASGI/WSGI callable (``bench/apps/floor_*.py``: the ``/health`` body,
   and the starter's list query and envelope, checked to be the starter's document),
   both served by the very command line of the starter's ``make serve`` with only the
   application swapped, from the starter's own venv; on SQLite, then the PostgreSQL
   variant against a PostgreSQL server of its own (``tests/postgres.py``). wrk (1
   thread, 32 connections) measures requests/s and p50/p99 latency, in interleaved
   rounds; the servers' own CPU time per request is read from /proc. Then py-spy
   profiles the starters under the same load (``bench/profiles.py``).

Results: ``bench/results/latest.{md,png,json}``; a full run also rewrites the results
block of the root README (between the ``bench-results`` markers).

Run from the repository root: ``uv run --with matplotlib python bench/run.py``
(``--help`` for the options). Needs wrk (Debian: ``apt-get install wrk``).
"""

# This module is the entry point and runs the phases; each phase has its own module:
# render.py (render time, time to green), serve.py (servers, wrk, CPU per request) and
# report.py (machine, markdown, chart, README block). common.py holds what they share
# and imports the template's test harness (tests/harness.py) for processes and servers.

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import RESULTS, ROOT, CommandError, log, matrix, postgres, timed
from render import Renderer, bench_green, bench_render, snapshot_template
from report import machine_info, write_results
from serve import bench_serve, trace_sink


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
    p.add_argument("--seconds", type=int, default=4, help="whole seconds per wrk measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of measurements")
    p.add_argument("--warmup", type=int, default=1, help="whole seconds of wrk warm-up per app")
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


def serve_both(
    fw: str, project: Path, renderer: Renderer, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """The served measurements of one framework: SQLite (the default variant without
    users and tokens, the same exporting traces, the same without observability, the same
    with async views where the framework has them, on one database; and ``project``, the
    default variant with users and tokens, on a database of its own), then the PostgreSQL
    variant (without users and tokens, and with async views)."""

    def installed(name: str, variant: matrix.Variant) -> Path:
        dest = work / name
        renderer.render(dest, fw, variant)
        timed(["make", "install"], cwd=dest)
        return dest

    # needs_auth=false: the rows measured before users and tokens existed stay comparable.
    starter = installed("starter", matrix.Variant(fw, needs_auth=False))
    unobserved = installed("unobserved", matrix.Variant(fw, observability=False, needs_auth=False))
    pg_project = installed(
        "postgresql", matrix.Variant(fw, database="postgresql", needs_auth=False)
    )
    sqlite = {"starter": starter, "traced": starter, "unobserved": unobserved, "auth": project}
    pg = {"starter": pg_project}
    if fw in matrix.ASYNC_CAPABLE:
        sqlite["async"] = installed("async", matrix.Variant(fw, needs_async=True, needs_auth=False))
        pg["async"] = installed(
            "async-postgresql",
            matrix.Variant(fw, needs_async=True, database="postgresql", needs_auth=False),
        )
    runs = {
        "sqlite": (sqlite, f"sqlite:///{work / 'bench.db'}"),
        "postgresql": (pg, postgres.cluster().create_database()),
    }
    results = {}
    with trace_sink() as sink:
        endpoint = f"http://127.0.0.1:{sink.server_port}"
        for database, (starters, url) in runs.items():
            results[database] = bench_serve(
                fw, starters, database, url, work, args.seconds, args.rounds, args.warmup, endpoint
            )
    if not sink.exports:  # type: ignore[attr-defined]
        raise CommandError(f"{fw}: the traced starter exported no spans")
    for database, result in results.items():
        if result["floor_body_difference"]:
            log(f"{fw}, {database}: the floor's list differs: {result['floor_body_difference']}")
        for label, s in result["median"].items():
            log(
                f"{fw}, {database}: {label}: {s['rps']:.0f} req/s, p50 {s['p50_ms']:.1f} ms, "
                f"p99 {s['p99_ms']:.1f} ms, {s['cpu_ms_per_req']:.2f} CPU ms/req"
                + (f", {s['errors']} errors" if s["errors"] else "")
            )
    return results


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
            f"after {args.warmup:g} s of warm-up; SQLite and PostgreSQL, "
            "ENVIRONMENT=production"
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
                    timed(["make", "install"], cwd=project)
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
                entry["serve"] = serve_both(fw, project, renderer, fw_work, args)
            except Exception as exc:  # noqa: BLE001
                entry["errors"]["serve"] = str(exc)
                log(f"{fw}: serving failed: {exc}")
            finally:
                shutil.rmtree(fw_work / "green", ignore_errors=True)
    finally:
        postgres.stop_cluster()
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


if __name__ == "__main__":
    sys.exit(main())
