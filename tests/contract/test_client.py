"""A team's generated client survives a change of framework (docs/CONTRACT.md section 3).

openapi-python-client generates a client from the served /openapi.json (title and version
pinned, as they name the package and its metadata). Every starter must give the same
package, byte for byte, for the same options: the first variant with those options to
generate one in a run leaves it as the reference, every other compares its own with it.
Only ``background_jobs`` (the reports) and ``needs_auth`` (the users, and security) change
the document. Then that client runs create,
list, get, replace, patch, delete, a 404 and a 422 against the variant's server.

Generating takes a few seconds, so this runs on each framework's default variant; with
``--full-matrix`` on every variant.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import harness
import matrix
import pytest

from contract.helpers import BLANK, DETAILS, TITLES

PACKAGE = "contract_client"
PINNED_INFO = {"title": "contract", "version": "1.0.0"}
OPERATIONS = (
    "list_items",
    "create_item",
    "get_item",
    "replace_item",
    "update_item",
    "delete_item",
)


def generate_client(document: dict[str, Any], where: Path) -> Path:
    """Run openapi-python-client on `document` (title and version pinned); the package dir."""
    document = {**document, "info": {**document["info"], **PINNED_INFO}}
    where.mkdir(parents=True)
    spec = where / "openapi.json"
    spec.write_text(json.dumps(document))
    generator = Path(sys.executable).with_name("openapi-python-client")
    assert generator.is_file(), f"openapi-python-client not found next to {sys.executable}"
    proc = harness.run(
        [str(generator), "generate", "--path", str(spec), "--meta", "none"],
        cwd=where,
        # The generator formats its output with ruff, installed beside it.
        env={
            "RUFF_NO_CACHE": "true",
            "PATH": f"{generator.parent}{os.pathsep}{os.environ['PATH']}",
        },
        timeout=120,
    )
    package = where / PACKAGE
    assert proc.returncode == 0 and package.is_dir(), (
        f"openapi-python-client exited {proc.returncode}:\n{proc.stdout}"
    )
    assert "Warning" not in proc.stdout, f"openapi-python-client warns:\n{proc.stdout}"
    return package


def differences(left: Path, right: Path) -> list[str]:
    """The files (relative paths) that are not byte-identical in two package trees."""

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }

    mine, theirs = files(left), files(right)
    return sorted(
        name for name in mine.keys() | theirs.keys() if mine.get(name) != theirs.get(name)
    )


def reference_client(
    tmp_path_factory: pytest.TempPathFactory, package: Path, variant: matrix.Variant
) -> Path:
    """The run's reference package for the variant's document: `package` itself when no
    variant with the same document has left one yet."""
    # The directory every xdist worker shares (each worker's basetemp is inside it).
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    document = "jobs" if variant.background_jobs else "items"
    if variant.needs_auth:
        document += "-auth"
    reference = root / f"client-reference-{document}"
    if not reference.exists():
        staging = root / f"client-reference-{uuid.uuid4().hex}"
        shutil.copytree(package, staging / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
        (staging / "OWNER").write_text(variant.id)
        try:
            staging.rename(reference)  # atomic: the first variant wins
        except OSError:
            shutil.rmtree(staging)
    return reference


@pytest.fixture
def importable(tmp_path: Path) -> Iterator[None]:
    """Let a test import the package it generated in `tmp_path`, fresh; forget it afterwards."""

    def forget() -> None:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]

    forget()
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        forget()


@harness.once_per_framework
def test_generated_client_is_the_same_and_works(
    variant: matrix.Variant,
    server: harness.Server,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    importable: None,
) -> None:
    with server.client() as http:
        response = http.get("/openapi.json")
    assert response.status_code == 200, response.text
    package = generate_client(response.json(), tmp_path / "generated")
    shutil.copytree(package, tmp_path / PACKAGE)

    reference = reference_client(tmp_path_factory, package, variant)
    owner = (reference / "OWNER").read_text()
    changed = differences(reference / PACKAGE, package)
    assert not changed, (
        f"the client generated from {variant.id}'s /openapi.json differs from {owner}'s "
        f"in {changed}"
    )

    token = server.token() if server.auth else None
    _exercise(importlib.import_module(PACKAGE), server.base_url, token)


def _exercise(package: ModuleType, base_url: str, token: str | None) -> None:
    """create, list, get, replace, patch, delete, a 404 and a 422, through the client
    (with needs_auth, its AuthenticatedClient with the default user's token)."""
    items = importlib.import_module(f"{PACKAGE}.api.items")
    ops = {name: importlib.import_module(f"{items.__name__}.{name}") for name in OPERATIONS}
    models = importlib.import_module(f"{PACKAGE}.models")
    if token is None:
        client = package.Client(base_url=base_url, raise_on_unexpected_status=True)
    else:
        client = package.AuthenticatedClient(
            base_url=base_url, token=token, raise_on_unexpected_status=True
        )
    name = f"client-{uuid.uuid4().hex[:12]}"

    created = ops["create_item"].sync_detailed(
        client=client, body=models.ItemCreate(name=name, quantity=3, description="via client")
    )
    assert created.status_code == 201, created
    item = created.parsed
    assert isinstance(item, models.ItemOut), item
    assert (item.name, item.quantity, item.description) == (name, 3, "via client")
    assert created.headers["location"].endswith(f"/api/items/{item.id}"), created.headers
    assert item.created_at.tzinfo is not None and item.updated_at >= item.created_at

    page = ops["list_items"].sync(client=client, limit=100, offset=0)
    assert isinstance(page, models.ItemPage), page
    assert page.limit == 100 and page.offset == 0 and page.total >= 1
    assert item.id in {listed.id for listed in page.items} or page.total > 100

    got = ops["get_item"].sync(item.id, client=client)
    assert isinstance(got, models.ItemOut) and got.to_dict() == item.to_dict(), got

    replaced = ops["replace_item"].sync(
        item.id, client=client, body=models.ItemReplace(name=name + "-r", quantity=5)
    )
    assert isinstance(replaced, models.ItemOut), replaced
    assert (replaced.name, replaced.quantity, replaced.description) == (name + "-r", 5, None)

    patched = ops["update_item"].sync(item.id, client=client, body=models.ItemPatch(quantity=7))
    assert isinstance(patched, models.ItemOut), patched
    assert (patched.name, patched.quantity) == (name + "-r", 7)

    deleted = ops["delete_item"].sync_detailed(item.id, client=client)
    assert deleted.status_code == 204, deleted

    missing = ops["get_item"].sync_detailed(item.id, client=client)
    assert missing.status_code == 404, missing
    problem = missing.parsed
    assert isinstance(problem, models.Problem), problem
    assert (problem.status, problem.title, problem.detail) == (404, TITLES[404], DETAILS[404])

    invalid = ops["create_item"].sync_detailed(
        client=client, body=models.ItemCreate(name=" ", quantity=1)
    )
    assert invalid.status_code == 422, invalid
    problem = invalid.parsed
    assert isinstance(problem, models.Problem), problem
    assert (problem.status, problem.title) == (422, TITLES[422]), problem
    errors = [(error.field, error.message) for error in problem.errors]
    assert errors == [("name", BLANK)], errors
