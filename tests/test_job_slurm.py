"""``reprolock job --engine slurm`` against a real single-node Slurm (slurmctld, slurmd,
munge; ``srun --container`` with runc), on the example project and its Debian base."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import slurm
from tests.support.cli import run_cli
from tests.support.services import require

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example"
BASE = EXAMPLE / ".reprolock" / "base"
pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def cluster() -> None:
    require(slurm.available(), "a Slurm cluster needs root and .ci/slurm")
    require(shutil.which("umoci") is not None, "umoci is not installed")
    slurm.ensure_cluster()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, cluster: None) -> Path:
    """The example, locked and built into an OCI layout beside it."""
    require((BASE / "index.json").is_file(),
            f"the Debian base is missing: run python fixtures/make_base.py {BASE}")
    root = tmp_path_factory.mktemp("job") / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json", "outputs"))
    (root / ".reprolock").mkdir()
    (root / ".reprolock" / "base").symlink_to(BASE)
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    built = run_cli("build", "-C", root, "--output", f"oci:{root.parent / 'image'}:example")
    assert built.returncode == 0, built.stderr
    return root


def write_job(project: Path, name: str, *extra: str) -> dict[str, object]:
    proc = run_cli("job", "-C", project, "--engine", "slurm", "--name", name, "--image",
                   f"oci-layout:{project.parent / 'image'}:example", "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    outcome: dict[str, object] = json.loads(proc.stdout)
    return outcome


def run_job(job_dir: Path) -> tuple[str, int, str]:
    job_id = slurm.submit(job_dir / "job.sbatch", job_dir)
    state, code = slurm.wait(job_id, timeout=180)
    return state, code, (job_dir / f"slurm-{job_id}.out").read_text()


def test_the_job_runs_the_locked_image_checked_and_its_record_verifies(project: Path) -> None:
    outcome = write_job(project, "ok")
    job_dir = Path(str(outcome["jobDir"]))
    index = json.loads((project.parent / "image" / "index.json").read_text())
    assert outcome["manifestDigest"] == index["manifests"][0]["digest"]
    script = (job_dir / "job.sbatch").read_text()
    assert f"--container={job_dir / 'bundle'}" in script and "--export=MASTER_ADDR" in script
    config = json.loads((job_dir / "bundle" / "config.json").read_text())
    assert config["root"]["readonly"] is True
    assert not {"network", "uts"} & {ns["type"] for ns in config["linux"]["namespaces"]}

    state, code, out = run_job(job_dir)
    assert (state, code) == ("COMPLETED", 0), out
    assert "runtime check passed" in out and "accuracy=" in out
    records = sorted((project / "outputs" / ".reprolock-runs").glob("*-node0.json"))
    record = json.loads(records[-1].read_text())
    lock = json.loads((project / "reprolock.lock.json").read_text())
    assert record["job"]["manifestDigest"] == outcome["manifestDigest"]
    assert record["check"] == {**record["check"], "ok": True, "mode": "full"}
    assert record["lock"]["inputsDigest"] == lock["inputsDigest"]
    assert [f["path"] for f in record["outputs"]["files"]] == ["model.json"]
    verified = run_cli("verify", "-C", project, "--run", records[-1])
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_tampered_bundle_stops_the_job_before_training(project: Path) -> None:
    job_dir = Path(str(write_job(project, "tampered")["jobDir"]))
    site = job_dir / "bundle" / "rootfs" / "opt" / "venv" / "lib" / "python3.11" / "site-packages"
    planted = site / "tinyml" / "__init__.py"
    planted.write_text(planted.read_text() + "\nprint('planted')\n")

    state, code, out = run_job(job_dir)
    assert (state, code) == ("FAILED", 3), out
    assert "the training was not started" in out and "tinyml/__init__.py" in out
    assert "accuracy=" not in out
    record = max((project / "outputs" / ".reprolock-runs").glob("*-node0.json"),
                 key=lambda p: p.stat().st_mtime)
    assert json.loads(record.read_text())["check"]["ok"] is False
    assert run_cli("verify", "-C", project, "--run", record).returncode == 1


def test_a_job_again_reuses_the_bundle_only_when_it_is_the_images(project: Path) -> None:
    first = write_job(project, "again")
    bundle = Path(str(first["jobDir"])) / "bundle"
    (bundle / "config.json").write_text("{}")  # not the one reprolock wrote
    second = write_job(project, "again")
    assert second["bundle"] == first["bundle"]
    assert json.loads((bundle / "config.json").read_text())["root"]["readonly"] is True


def test_no_job_is_written_for_an_image_that_is_not_the_locked_one(project: Path,
                                                                   tmp_path: Path) -> None:
    drifted = tmp_path / "drifted"
    shutil.copytree(project, drifted, symlinks=True)
    (drifted / "train.py").write_text((drifted / "train.py").read_text() + "\n# changed\n")
    proc = run_cli("job", "-C", drifted, "--engine", "slurm", "--image",
                   f"oci-layout:{project.parent / 'image'}:example", "-o", tmp_path / "job")
    assert proc.returncode == 1, proc.stderr
    assert "is not the locked image" in proc.stderr and "code" in proc.stderr
    assert not (tmp_path / "job").exists()


def test_the_sbatch_script_submits_through_reprolock(project: Path) -> None:
    proc = run_cli("job", "-C", project, "--engine", "slurm", "--name", "submitted",
                   "--image", f"oci-layout:{project.parent / 'image'}:example", "--submit",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    job_id = int(json.loads(proc.stdout)["jobId"])
    assert slurm.wait(job_id, timeout=180) == ("COMPLETED", 0)
    assert subprocess.run(["scontrol", "show", "job", str(job_id)], capture_output=True,
                          check=False).returncode == 0
