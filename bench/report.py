"""The results: the machine they were measured on, the markdown tables, the chart and the
README block (between the ``bench-results`` markers)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

from common import (
    CONNECTIONS,
    DATABASE_TITLES,
    GREEN_MAX_S,
    HEALTH_MIN_RATIO,
    ITEMS_MIN_RATIO,
    LIST,
    P99_MAX_MS,
    README,
    RENDER_MAX_RATIO,
    RENDER_MAX_S,
    TARGETS,
    WORKERS,
    copier_command,
    harness,
    log,
    target_labels,
)

README_START = "<!-- bench-results:start -->"
README_END = "<!-- bench-results:end -->"

FRAMEWORK_TITLES = {
    "fastapi": "FastAPI",
    "drf": "DRF",
    "flask": "Flask",
    "bottle": "Bottle",
    "pyramid": "Pyramid",
}


# The one-minute load average at the start below which the machine counts as idle.
IDLE_LOAD = 0.5


def was_idle(machine: dict[str, Any]) -> bool:
    """Whether nothing else was running when the benchmark started."""
    return bool(machine["load_start"][0] < IDLE_LOAD)


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
    uv = harness.find_uv()
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


def mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def served_rows(
    framework: str, database: str, x: dict[str, Any], bare: dict[str, Any]
) -> list[str]:
    """The table rows of one database's served measurements."""
    rows = []
    labels = target_labels(database)
    warning = " ⚠️" if x.get("floor_body_difference") else ""
    for role, path, label in TARGETS[database]:
        s = x["median"].get(label)
        if s is None:  # a results file from before this target was measured
            continue
        floor = x["median"].get(labels.get(("floor", path), ""))
        vs = s["rps"] / bare["rps"]
        vs_floor = f"{s['rps'] / floor['rps']:.0%}" if floor else "–"
        vs_cpu = bare["cpu_ms_per_req"] / s["cpu_ms_per_req"]
        target = ""
        if role not in ("floor", "bare"):
            minimum = HEALTH_MIN_RATIO if path == "/health" else ITEMS_MIN_RATIO
            target = (
                f"{mark(vs >= minimum)} ≥ {minimum:.0%}; "
                f"{mark(s['p99_ms'] < P99_MAX_MS)} p99 < {P99_MAX_MS:g} ms"
            )
        errors = f" ({s['errors']} errors)" if s["errors"] else ""
        flag = warning if (role, path) == ("floor", LIST) else ""
        rows.append(
            f"| {framework} | {DATABASE_TITLES[database]} | {x['server']} "
            f"| {label}{errors}{flag} "
            f"| {s['rps']:,.0f} | {s['p50_ms']:.1f} ms | {s['p99_ms']:.1f} ms "
            f"| {s['cpu_ms_per_req']:.2f} ms | {vs:.0%} | {vs_floor} | {vs_cpu:.0%} | {target} |"
        )
    return rows


def sqlite_run(r: dict[str, Any]) -> dict[str, Any]:
    """A framework's served measurements on SQLite ({} when there are none)."""
    return dict((r.get("serve") or {}).get("sqlite") or {})


def render_markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        f"Measured {data['date']} on {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}; "
        f"Python {m['python']}, {m['copier']}, {m['uv']}, {m['wrk']}. "
        f"Template: {data['template']['commit']}"
        + (" with uncommitted changes" if data["template"]["dirty"] == "yes" else "")
        + (
            ". The machine was otherwise idle (load average "
            f"{m['load_start'][0]:.1f} at the start, on {m['cores']} cores; "
            f"{m['load_end'][0]:.1f} at the end is the benchmark's own): the ratios, "
            "measured back to back in the same run, are still the figures to compare."
            if was_idle(m)
            else ". **The machine was shared** with other work (load average "
            f"{m['load_start'][0]:.1f} at the start, {m['load_end'][0]:.1f} at the end, on "
            f"{m['cores']} cores): absolute times are pessimistic and noisy; the ratios, "
            "measured back to back in the same run, are the figures to compare."
        ),
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
            "| framework | database | server | app | req/s | p50 | p99 | CPU/req "
            "| vs bare (req/s) | vs floor (req/s) | vs bare (CPU) | target |"
        ),
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for fw, r in fws.items():
        runs = r.get("serve") or {}
        if not runs:
            err = r["errors"].get("serve", "not run")
            lines.append(f"| {name(fw)} | failed: {err.splitlines()[0][:80]} |" + " |" * 10)
            continue
        bare = runs["sqlite"]["median"]["bare hello-world"]
        for database, x in runs.items():
            lines += served_rows(name(fw), database, x, bare)
    lines += [
        "",
        (
            "CPU/req: the server processes' user + system CPU time (from /proc) divided by "
            "the requests served; on a shared machine it varies less than requests/s. "
            '"vs bare (CPU)" is the bare app\'s CPU per request over this row\'s; "vs '
            'floor" compares with the framework-free app on the same path and database, '
            "whose list is the starter's JSON document (same members, values, order)"
            " (a ⚠️ marks a run where it was not)."
        ),
        "",
        "#### What metrics and tracing cost (CPU per request, SQLite)",
        "",
        (
            "| framework | path | without observability | metrics | metrics and traces "
            "| metrics cost | tracing cost |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = target_labels("sqlite")

    def cost(on: float, off: float) -> str:
        return f"{(on - off) * 1000:+.0f} µs ({on / off - 1:+.0%})"

    for fw, r in fws.items():
        median = sqlite_run(r).get("median") or {}
        for path in ("/health", LIST):
            cpu = {
                role: median[labels[(role, path)]]["cpu_ms_per_req"]
                for role in ("unobserved", "starter", "traced")
                if labels.get((role, path)) in median
            }
            if "unobserved" not in cpu or "starter" not in cpu:
                continue
            off, metrics = cpu["unobserved"], cpu["starter"]
            traced = cpu.get("traced")
            lines.append(
                f"| {name(fw)} | `{path}` | {off:.2f} ms | {metrics:.2f} ms "
                + (f"| {traced:.2f} ms " if traced else "| – ")
                + f"| {cost(metrics, off)} "
                + (f"| {cost(traced, metrics)} |" if traced else "| – |")
            )
    lines += [
        "",
        f"#### What users and tokens cost (CPU per request, SQLite, `GET {LIST}`)",
        "",
        (
            "The default variant (`needs_auth` on) lists its user's items with a bearer "
            "token: the token's signature and claims are checked and its user read on every "
            "request."
        ),
        "",
        "| framework | with a token | without users and tokens | difference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for fw, r in fws.items():
        median = sqlite_run(r).get("median") or {}
        on = median.get(labels.get(("auth", LIST), ""))
        off = median.get(labels[("starter", LIST)])
        if on and off:
            on_ms, off_ms = on["cpu_ms_per_req"], off["cpu_ms_per_req"]
            lines.append(
                f"| {name(fw)} | {on_ms:.2f} ms | {off_ms:.2f} ms "
                f"| {(on_ms - off_ms) * 1000:+.0f} µs ({on_ms / off_ms - 1:+.0%}) |"
            )
    lines += profile_rows(fws, name)
    lines += [
        "",
        "#### Versions",
        "",
        "| framework | installed |",
        "| --- | --- |",
    ]
    for fw, r in fws.items():
        versions = sqlite_run(r).get("versions") or {}
        text = ", ".join(f"{k} {v}" for k, v in versions.items()) or "–"
        lines.append(f"| {name(fw)} | {text} |")
    errors = [(fw, phase, e) for fw, r in fws.items() for phase, e in r["errors"].items()]
    if errors:
        lines += ["", "#### Failures", ""]
        for fw, phase, e in errors:
            lines += [f"{name(fw)}, {phase}:", "", "```", e.strip()[-1500:], "```", ""]
    return "\n".join(lines).rstrip() + "\n"


# A project function on (nearly) every sampled stack is a wrapper of the whole request
# (a middleware, the app's entry point): the profile names what those wrappers lead to.
WRAPPER_SHARE = 0.9


def profile_rows(fws: dict[str, Any], name: Any) -> list[str]:
    """The table of the py-spy profiles (bench/profiles.py), one row per profiled request
    (none for a results file from before the profiles)."""
    header = [
        "",
        "#### Where the CPU goes (py-spy sampling the workers under wrk)",
        "",
        (
            "Each sample is charged to the code of its innermost Python frame (self time; "
            "native code such as the database driver counts for the frame that called it) "
            "and to each of the project's own functions on its stack (inclusive time; "
            f"those on more than {WRAPPER_SHARE:.0%} of the samples, which wrap the "
            "whole request, are left out)."
        ),
        "",
        "| framework | request | samples | self time, by code | the project's functions (inclusive) |",
        "| --- | --- | ---: | --- | --- |",
    ]
    lines = []
    for fw, r in fws.items():
        for database, x in (r.get("serve") or {}).items():
            for label, p in (x.get("profiles") or {}).items():
                request = f"{label.removeprefix('starter ')}, {DATABASE_TITLES[database]}"
                if "error" in p:
                    lines.append(f"| {name(fw)} | {request} | – | {p['error']} | |")
                    continue
                owners = ", ".join(f"{o} {share:.0%}" for o, share in p["owners"])
                own = ", ".join(
                    f"`{f}` {share:.0%}" for f, share in p["own"] if share < WRAPPER_SHARE
                )
                lines.append(
                    f"| {name(fw)} | {request} | {p['samples']:,} | {owners} | {own or '–'} |"
                )
    return header + lines if lines else []


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

    # Throughput and p99 (SQLite)
    targets = TARGETS["sqlite"]
    width = 0.8 / len(targets)
    for i, (_, _, label) in enumerate(targets):
        med = [get(fw, "serve", "sqlite", "median", label) or {} for fw in fws]
        offs = [x + (i - (len(targets) - 1) / 2) * width for x in xs]
        ax_rps.bar(offs, [s.get("rps", 0) for s in med], width, label=label)
        ax_p99.bar(offs, [s.get("p99_ms", 0) for s in med], width, label=label)
    ax_rps.set_title(f"Requests/s, SQLite ({CONNECTIONS} connections, {WORKERS} workers)")
    ax_rps.legend(fontsize=8)
    ax_p99.axhline(P99_MAX_MS, color="r", ls="--", lw=1, label=f"target {P99_MAX_MS:g} ms")
    ax_p99.set_title("p99 latency, SQLite (ms)")
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
        f"({'idle' if was_idle(m) else 'shared'}, load {m['load_start'][0]:.1f}), "
        f"Python {m['python']}{note}",
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
