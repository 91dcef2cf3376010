"""'reprolock run --sign-key --attach registry:…' pushes the run's signed statement as
OCI 1.1 referrers of the image that ran (its DSSE envelope and its Sigstore bundle), in
Debian's docker-registry (no referrers API: the ``sha256-HEX`` fallback index and
cosign's ``.att`` tag list them)."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from reprolock.verify.record import RUN_PREDICATE
from tests.support.cli import run_cli
from tests.test_run import _env, built  # noqa: F401  (the module's built example image)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def _manifest(registry: str, name: str, ref: str, accept: str) -> requests.Response:
    return requests.get(f"http://{registry}/v2/{name}/manifests/{ref}",
                        headers={"Accept": accept}, timeout=30)


def test_the_signed_run_statement_is_attached_to_the_image_that_ran(
        built: dict, registry: str, tmp_path: Path) -> None:  # noqa: F811
    root = built["root"]
    pushed = run_cli("build", "-C", root, "--json", "-q", "-o", f"registry:{registry}/ex:run")
    assert pushed.returncode == 0, pushed.stderr
    digest = json.loads(pushed.stdout)["manifestDigest"]
    assert run_cli("keygen", "-o", tmp_path / "k", env=_env()).returncode == 0

    unsigned = run_cli("run", "-C", root, "--attach", f"registry:{registry}/ex:run", "--",
                       "true")
    assert unsigned.returncode == 2 and "--attach" in unsigned.stderr
    proc = run_cli("run", "-C", root, "--sign-key", tmp_path / "k.key", "--attach",
                   f"registry:{registry}/ex:run", "-q", "--", "python", "train.py",
                   env=_env())
    assert proc.returncode == 0, proc.stderr

    index = _manifest(registry, "ex", f"sha256-{digest.removeprefix('sha256:')}", OCI_INDEX)
    assert index.status_code == 200, index.text
    entries = {e["artifactType"]: e for e in index.json()["manifests"]}
    assert set(entries) == {DSSE, BUNDLE}  # the envelope, and its bundle for cosign v3
    referrer = _manifest(registry, "ex", entries[DSSE]["digest"], OCI_MANIFEST).json()
    assert referrer["subject"]["digest"] == digest
    assert referrer["layers"][0]["annotations"]["predicateType"] == RUN_PREDICATE
    assert entries[BUNDLE]["annotations"]["dev.sigstore.bundle.predicateType"] == RUN_PREDICATE
    bundle = _manifest(registry, "ex", entries[BUNDLE]["digest"], OCI_MANIFEST).json()
    assert bundle["subject"]["digest"] == digest
    att = _manifest(registry, "ex", f"sha256-{digest.removeprefix('sha256:')}.att",
                    OCI_MANIFEST)
    assert att.status_code == 200
    assert [x["annotations"]["predicateType"] for x in att.json()["layers"]] == [RUN_PREDICATE]


def test_a_registry_image_other_than_the_one_that_ran_is_refused(
        built: dict, registry: str, tmp_path: Path) -> None:  # noqa: F811
    root = built["root"]
    env_only = run_cli("build", "-C", root, "-q", "--env-only", "-o",
                       f"registry:{registry}/ex:env")
    assert env_only.returncode == 0, env_only.stderr
    assert run_cli("keygen", "-o", tmp_path / "k", env=_env()).returncode == 0
    proc = run_cli("run", "-C", root, "--sign-key", tmp_path / "k.key", "--attach",
                   f"registry:{registry}/ex:env", "-q", "--", "true", env=_env())
    assert proc.returncode == 2, proc.stderr
    assert "is not the image that ran" in proc.stderr
