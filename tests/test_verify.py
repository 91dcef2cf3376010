"""``reprolock verify`` in CI (lock, signature, rebuild, SBOM) and ``--image`` on OCI
outputs, on the offline build project (tiny base, local wheels); no Docker needed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.buildproject import cli, copy_project
from tests.support.wheels import build_wheel

PASSWORD = {"REPROLOCK_KEY_PASSWORD": "pw"}


@pytest.fixture
def project(build_project_template: Path, tmp_path: Path) -> Path:
    return copy_project(build_project_template, tmp_path / "p")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the rebuilds reuse each other's layers."""
    return tmp_path_factory.mktemp("verify-cache")


def verify(project: Path, cache: Path, *args: str | Path, **kwargs: object) -> tuple[int, dict]:
    proc = cli("verify", "-C", project, "--json", *args, cache=cache, **kwargs)  # type: ignore[arg-type]
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def check(report: dict, name: str) -> dict:
    return next(c for c in report["checks"] if c["name"] == name)


def test_fresh_lock_rebuilds_to_its_digests(project: Path, cache: Path) -> None:
    proc = cli("verify", "-C", project, cache=cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ rebuild: the environment image rebuilt from the lock is sha256:" in proc.stdout
    assert "✓ fresh" in proc.stdout and "✓ lock" in proc.stdout
    code, report = verify(project, cache, "--no-rebuild")
    assert code == 0 and "rebuild" not in {c["name"] for c in report["checks"]}


def test_stale_lock_says_which_input_and_the_fix(project: Path, cache: Path) -> None:
    (project / "requirements.in").write_text("tinyml\n")
    proc = cli("verify", "-C", project, cache=cache)
    assert proc.returncode == 1
    assert "✗ fresh: the lock is stale" in proc.stdout
    assert "requirements.in" in proc.stdout
    assert "fix:\n  run 'reprolock lock' and commit the lock" in proc.stdout


def test_changed_wheel_is_an_artifact_hash_change(project: Path, cache: Path) -> None:
    wheel = next((project / "wheels").glob("tinyconfig-*.whl"))
    build_wheel(project / "wheels", "tinyconfig", "1.2.0",
                modules={"tinyconfig/__init__.py": "EVIL = 1\n"})
    assert wheel.exists()
    code, report = verify(project, cache)
    assert code == 1
    rebuild = check(report, "rebuild")
    assert any(d.startswith("package tinyconfig 1.2.0: artifact hash changed")
               for d in rebuild["differences"]), rebuild


def test_swapped_base_is_named(project: Path, cache: Path, tmp_path: Path) -> None:
    from tests.support.images import make_plain_base

    shutil.rmtree(project / "base")
    (tmp_path / "rootfs").mkdir()
    make_plain_base(project / "base", tmp_path / "rootfs")  # same files, other image config
    index = json.loads((project / "base" / "index.json").read_text())
    lock = json.loads((project / "reprolock.lock.json").read_text())
    config = json.loads((project / "base" / "blobs" / "sha256" /
                         index["manifests"][0]["digest"].split(":")[1]).read_text())
    if index["manifests"][0]["digest"] == lock["base"]["digest"]:
        # the same bytes make the same image: change its config to swap the base
        from tests.support.oci_writer import write_image

        config_blob = json.loads((project / "base/blobs/sha256" /
                                  config["config"]["digest"].split(":")[1]).read_text())
        config_blob["config"]["Env"].append("SWAPPED=1")
        layer = config["layers"][0]
        write_image(project / "base", config=config_blob, layers=[_Layer(layer)], tag="tiny")
    code, report = verify(project, cache)
    assert code == 1
    rebuild = check(report, "rebuild")
    assert rebuild["detail"].startswith("the base image oci-layout:base:tiny moved")
    assert rebuild["differences"][0].startswith(f"base digest {lock['base']['digest']} → ")


class _Layer:
    """What write_image needs of a layer written before."""

    def __init__(self, desc: dict) -> None:
        self.digest = desc["digest"]
        self.size = desc["size"]
        self.media_type = desc["mediaType"]
        self.diff_id = desc["digest"]  # uncompressed layer: the digest is the diff_id


def test_require_signature(project: Path, cache: Path, tmp_path: Path) -> None:
    config = project / "reprolock.toml"
    config.write_text("require-signature = true\n" + config.read_text())
    assert cli("lock", "--check", "-C", project, cache=cache).returncode == 0  # not an input
    no_key = cli("verify", "-C", project, "--no-rebuild", cache=cache)
    assert no_key.returncode == 1 and "require-signature = true" in no_key.stderr
    assert cli("keygen", "-o", tmp_path / "k", cache=cache, env=PASSWORD).returncode == 0
    code, report = verify(project, cache, "--no-rebuild", "--key", tmp_path / "k.pub")
    assert code == 1 and "is not signed" in check(report, "signature")["detail"]
    assert cli("sign", tmp_path / "k.key", "-C", project, cache=cache,
               env=PASSWORD).returncode == 0
    assert verify(project, cache, "--no-rebuild", "--key", tmp_path / "k.pub")[0] == 0
    lock = project / "reprolock.lock.json"
    lock.write_text(lock.read_text().replace('"direct": true', '"direct": false', 1))
    code, report = verify(project, cache, "--no-rebuild", "--key", tmp_path / "k.pub")
    assert code == 1 and "not a valid signature" in check(report, "signature")["detail"]


def test_missing_and_newer_locks_exit_2(project: Path, cache: Path) -> None:
    lock = project / "reprolock.lock.json"
    doc = json.loads(lock.read_text())
    lock.write_text(json.dumps({**doc, "lockVersion": 9}))
    newer = cli("verify", "-C", project, cache=cache)
    assert newer.returncode == 2
    assert "lockVersion 9" in newer.stderr and "upgrade reprolock" in newer.stderr
    lock.unlink()
    missing = cli("verify", "-C", project, cache=cache)
    assert missing.returncode == 2 and "no lock file" in missing.stderr


def test_image_in_an_oci_layout(project: Path, cache: Path) -> None:
    out = project.parent / "out"
    built = cli("build", "-C", project, "-q", "-o", f"oci:{out}:v1", cache=cache)
    assert built.returncode == 0, built.stderr
    code, report = verify(project, cache, "--image", f"oci:{out}:v1")
    assert code == 0, report
    assert {c["name"] for c in report["checks"]} >= {"base", "dependencies", "config", "code"}
    (project / "train.py").write_text("print('edited')\n")
    code, report = verify(project, cache, "--image", f"oci:{out}:v1")
    assert code == 1 and check(report, "code")["differences"][0].startswith("code tree ")
    assert verify(project, cache, "--image", f"oci:{out}:v1", "--allow-code-drift")[0] == 0


def test_image_of_other_dependencies_names_the_package(project: Path, cache: Path) -> None:
    out = project.parent / "out"
    (project / "requirements.in").write_text("tinyml\nbigdata\ntinyconfig==1.0.0\n")
    build_wheel(project / "wheels", "tinyconfig", "1.0.0")
    assert cli("lock", "-C", project, "--no-sbom", cache=cache).returncode == 0
    assert cli("build", "-C", project, "-q", "-o", f"oci:{out}:old", cache=cache).returncode == 0
    (project / "requirements.in").write_text("tinyml\nbigdata\n")
    assert cli("lock", "-C", project, "--no-sbom", "-U", cache=cache).returncode == 0
    code, report = verify(project, cache, "--image", f"oci:{out}:old", "--allow-code-drift")
    assert code == 1
    assert "package tinyconfig 1.2.0 → 1.0.0" in check(report, "dependencies")["differences"]


def test_nonexistent_image_exits_2(project: Path, cache: Path) -> None:
    proc = cli("verify", "-C", project, "--image", f"oci:{project}/nothing:v1", cache=cache)
    assert proc.returncode == 2 and "error:" in proc.stderr


def test_image_in_the_local_registry(project: Path, cache: Path, registry: str) -> None:
    ref = f"{registry}/verify-test:v1"
    built = cli("build", "-C", project, "-q", "-o", f"registry:{ref}", cache=cache)
    assert built.returncode == 0, built.stderr
    code, report = verify(project, cache, "--image", f"registry:{ref}")
    assert code == 0, report


def test_image_checks_the_lock_signature(project: Path, cache: Path, tmp_path: Path) -> None:
    """--image ignored --key and require-signature for the lock itself."""
    out = project.parent / "out"
    assert cli("build", "-C", project, "-q", "-o", f"oci:{out}:v1", cache=cache).returncode == 0
    assert cli("keygen", "-o", tmp_path / "k", cache=cache, env=PASSWORD).returncode == 0
    code, report = verify(project, cache, "--image", f"oci:{out}:v1", "--key",
                          tmp_path / "k.pub", "--attestation", tmp_path / "none.json")
    assert code == 1 and "is not signed" in check(report, "signature")["detail"]
    config = project / "reprolock.toml"
    config.write_text("require-signature = true\n" + config.read_text())
    no_key = cli("verify", "-C", project, "--image", f"oci:{out}:v1", cache=cache)
    assert no_key.returncode == 1 and "require-signature = true" in no_key.stderr
    assert cli("sign", tmp_path / "k.key", "-C", project, cache=cache,
               env=PASSWORD).returncode == 0
    code, report = verify(project, cache, "--image", f"oci:{out}:v1", "--key",
                          tmp_path / "k.pub", "--attestation", tmp_path / "none.json",
                          "--allow-code-drift")  # reprolock.toml is code: it was edited
    assert check(report, "signature")["ok"], report
    assert {c["name"] for c in report["checks"] if not c["ok"]} == {"provenance"}


def _record(project: Path) -> dict:
    """A minimal valid run record of this project, as 'reprolock run' writes them."""
    import hashlib

    from reprolock.config import load_config
    from reprolock.inspection.codeset import collect_code

    lock = (project / "reprolock.lock.json").read_bytes()
    digest = "sha256:" + "0" * 64
    tree = collect_code(load_config(project)).tree_digest  # 'verify --run' compares it
    return {"recordVersion": 1, "generator": {"name": "reprolock", "version": "0"},
            "image": {"id": digest}, "codeTree": tree, "command": ["python", "train.py"],
            "lock": {"path": "reprolock.lock.json", "inputsDigest": "x",
                     "digest": "sha256:" + hashlib.sha256(lock).hexdigest()},
            "network": "none", "started": "2024-01-01T00:00:00.0Z",
            "ended": "2024-01-01T00:00:01.0Z", "exitCode": 0,
            "check": {"ok": True, "mode": "full", "warnOnly": False, "failed": [],
                      "seconds": 1.0},
            "outputs": {"dir": "outputs", "files": []}}


def test_run_record_checks_the_lock_signature(project: Path, cache: Path,
                                              tmp_path: Path) -> None:
    record = tmp_path / "run.json"
    record.write_text(json.dumps(_record(project)))
    assert verify(project, cache, "--run", record)[0] == 0
    assert cli("keygen", "-o", tmp_path / "k", cache=cache, env=PASSWORD).returncode == 0
    code, report = verify(project, cache, "--run", record, "--key", tmp_path / "k.pub")
    assert code == 1 and "is not signed" in check(report, "lock-signature")["detail"]
    assert cli("sign", tmp_path / "k.key", "-C", project, cache=cache,
               env=PASSWORD).returncode == 0
    code, report = verify(project, cache, "--run", record, "--key", tmp_path / "k.pub")
    assert check(report, "lock-signature")["ok"], report
    config = project / "reprolock.toml"
    config.write_text("require-signature = true\n" + config.read_text())
    no_key = cli("verify", "-C", project, "--run", record, cache=cache)
    assert no_key.returncode == 1 and "require-signature = true" in no_key.stderr


def test_run_record_with_an_unreadable_output_fails(project: Path, cache: Path,
                                                    tmp_path: Path) -> None:
    doc = _record(project)
    doc["outputs"]["files"] = [{"path": "model.bin", "size": 0,
                                "unreadable": "Permission denied"}]
    record = tmp_path / "run.json"
    record.write_text(json.dumps(doc))
    code, report = verify(project, cache, "--run", record)
    assert code == 1
    assert "outputs/model.bin could not be read when the run ended (Permission denied)" in \
        check(report, "outputs")["differences"][0]
