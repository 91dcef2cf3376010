"""The example project in fixtures/, locked against the real Debian base image that
fixtures/make_base.py builds with debootstrap (.ci/test builds it before the tests)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.services import require

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example"
BASE = EXAMPLE / ".reprolock" / "base"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    require((BASE / "index.json").is_file(),
            f"the Debian base is missing: run python fixtures/make_base.py {BASE}")
    root = tmp_path / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json", "outputs"))
    (root / ".reprolock").mkdir()
    (root / ".reprolock" / "base").symlink_to(BASE)
    return root


@pytest.mark.parametrize("resolver", ["uv", "pip-tools"])
def test_example_locks_on_the_debian_base(example: Path, resolver: str) -> None:
    config = example / "reprolock.toml"
    config.write_text(config.read_text().replace('resolver = "uv"', f'resolver = "{resolver}"'))
    proc = run_cli("lock", "--no-sbom", "-C", example)
    assert proc.returncode == 0, proc.stderr
    lock = json.loads((example / "reprolock.lock.json").read_text())
    assert lock["base"]["python"]["path"] == "/usr/bin/python3.11"
    assert lock["base"]["python"]["version"].startswith("3.11.")
    assert lock["base"]["libc"] == {"family": "glibc", "version": "2.36"}
    index = json.loads((BASE / "index.json").read_text())
    assert lock["base"]["digest"] == index["manifests"][0]["digest"]
    assert {p["name"]: p["version"] for p in lock["packages"]} == {
        "tinyconfig": "1.0.0", "tinyml": "1.0.0"}
    assert run_cli("lock", "--check", "-C", example).returncode == 0


def test_example_trains_with_the_exported_requirements(example: Path, tmp_path: Path) -> None:
    assert run_cli("lock", "--no-sbom", "-C", example).returncode == 0
    reqs = tmp_path / "requirements.txt"
    assert run_cli("export", "-C", example, "-o", reqs).returncode == 0
    site = tmp_path / "site"
    # the export carries --no-index and --find-links (relative to itself): no other options
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--require-hashes", "--no-deps",
                          "--target", str(site), "-r", str(reqs)],
                         capture_output=True, text=True, check=False)
    assert pip.returncode == 0, pip.stderr
    out = tmp_path / "outputs"
    train = subprocess.run([sys.executable, "train.py"], cwd=example, capture_output=True,
                           text=True, env={"PYTHONPATH": str(site), "REPROLOCK_OUTPUTS": str(out),
                                           "PATH": "/usr/bin:/bin"}, check=False)
    assert train.returncode == 0, train.stderr
    model = json.loads((out / "model.json").read_text())
    assert model["accuracy"] > 0.9
    assert len(model["weights"]) == 3


def test_example_inspection_sees_the_training_code(example: Path) -> None:
    assert run_cli("lock", "--no-sbom", "-C", example).returncode == 0
    proc = run_cli("inspect", "--json", "-C", example)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    paths = {f["path"] for f in data["code"]["fileList"]}
    assert {"train.py", "config.toml", "requirements.in", "reprolock.toml"} <= paths
    assert not any(p.startswith(("wheels/", ".reprolock/")) for p in paths)
    assert data["imports"] == {"tinyconfig": "tinyconfig", "tinyml": "tinyml"}
