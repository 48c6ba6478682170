"""Render time (``copier copy`` against ``copier --version``) and time to green (a fresh
render, ``make install``, ``make test``)."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import ROOT, Timed, copier_command, harness, matrix, timed


def snapshot_template(dest: Path) -> dict[str, str]:
    """Copy the working tree (tracked and untracked, not ignored files) into a fresh git
    repository with one commit: every render of the run uses the same template, a clean
    one (as users get from a tag), whatever others change meanwhile."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    dest.mkdir(parents=True)
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if not src.exists() or src.is_dir():
            continue  # deleted but still tracked, or a submodule
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench snapshot"], cwd=dest, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {"commit": head, "dirty": "yes" if dirty else "no"}


@dataclass
class Renderer:
    """``copier copy`` on the command line, as a user runs it, with empty user settings."""

    template: Path
    work: Path
    copier: list[str] = field(default_factory=copier_command)

    def __post_init__(self) -> None:
        settings = self.work / "copier-settings.yml"
        settings.write_text("{}\n")
        self.env: dict[str, str | None] = {"COPIER_SETTINGS_PATH": str(settings)}
        self._count = 0

    def version(self) -> Timed:
        return timed([*self.copier, "--version"], cwd=self.work, env=self.env)

    def render(self, dest: Path, framework: str, variant: matrix.Variant | None = None) -> Timed:
        data: dict[str, Any] = {
            "framework": framework,
            "available_frameworks": list(matrix.FRAMEWORKS),
        }
        if variant is not None:
            # The variant's option answers; the project's identity stays the defaults.
            options = variant.answers
            data.update({k: v for k, v in options.items() if k not in matrix.PROJECT_ANSWERS})
        self._count += 1
        data_file = self.work / f"data-{self._count}.yml"
        data_file.write_text(json.dumps(data) + "\n")  # JSON is YAML
        args = [
            *self.copier,
            "copy",
            "--defaults",
            "--quiet",
            "--vcs-ref",
            "HEAD",
            "--data-file",
            str(data_file),
            str(self.template),
            str(dest),
        ]
        return timed(args, cwd=self.work, env=self.env, timeout=300)


def bench_render(
    fw: str, renderer: Renderer, work: Path, runs: int, variants: bool
) -> tuple[dict[str, Any], Path]:
    """Render medians for one framework; returns the result and a rendered default project."""
    walls, cpus, v_walls, v_cpus = [], [], [], []
    first: Path | None = None
    for i in range(runs):
        v = renderer.version()
        v_walls.append(v.wall)
        v_cpus.append(v.cpu)
        dest = work / f"render-{i}"
        r = renderer.render(dest, fw)
        walls.append(r.wall)
        cpus.append(r.cpu)
        if first is None:
            first = dest
        else:
            shutil.rmtree(dest)
    assert first is not None
    result: dict[str, Any] = {
        "runs": runs,
        "wall_s": walls,
        "cpu_s": cpus,
        "version_wall_s": v_walls,
        "version_cpu_s": v_cpus,
        "median_s": statistics.median(walls),
        "median_cpu_s": statistics.median(cpus),
        "version_median_s": statistics.median(v_walls),
        "version_median_cpu_s": statistics.median(v_cpus),
    }
    result["ratio"] = result["median_s"] / result["version_median_s"]
    result["cpu_ratio"] = result["median_cpu_s"] / result["version_median_cpu_s"]
    result["files"] = sum(1 for p in first.rglob("*") if p.is_file())
    others: list[dict[str, Any]] = []
    if variants:
        for variant in matrix.all_variants(fw)[1:]:
            dest = work / f"variant-{variant.id}"
            r = renderer.render(dest, fw, variant)
            others.append({"variant": variant.id, "wall_s": r.wall, "cpu_s": r.cpu})
            shutil.rmtree(dest)
    result["variants"] = others
    default_id = matrix.default_variant(fw).id
    every = [{"variant": default_id, "wall_s": result["median_s"], "cpu_s": result["median_cpu_s"]}]
    result["slowest"] = max(every + others, key=lambda r: r["wall_s"])
    return result, first


def bench_green(fw: str, renderer: Renderer, warm_project: Path, work: Path) -> dict[str, Any]:
    """Warm the package cache with ``warm_project`` (kept for serving), then time a fresh
    render, ``make install`` and ``make test``."""
    warm = timed(["make", "install"], cwd=warm_project)
    project = work / "green"
    r = renderer.render(project, fw)
    install = timed(["make", "install"], cwd=project)
    test = timed(["make", "test"], cwd=project)
    summary = re.findall(r"=+ (.*?) in [\d.]+s", test.output)
    result = {
        "warm_install_s": warm.wall,
        "render_s": r.wall,
        "install_s": install.wall,
        "test_s": test.wall,
        "total_s": r.wall + install.wall + test.wall,
        "tests": summary[-1] if summary else "",
        "installer": "uv" if harness.find_uv() else "venv + pip",
    }
    shutil.rmtree(project)
    return result
