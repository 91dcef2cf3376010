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


@pytest.fixture(scope="module")
def pushed(project: Path, registry: str) -> str:
    """The example's image in the local registry, as a node would pull it."""
    ref = f"{registry}/example:job"
    built = run_cli("build", "-C", project, "--output", f"registry:{ref}")
    assert built.returncode == 0, built.stderr
    return ref


@pytest.mark.docker
def test_docker_on_the_node_runs_the_image_by_digest_checked(project: Path,
                                                             pushed: str) -> None:
    outcome = write_job_from(project, "on-docker", f"registry:{pushed}", "--runtime", "docker")
    job_dir = Path(str(outcome["jobDir"]))
    script = (job_dir / "job.sbatch").read_text()
    digest = str(outcome["manifestDigest"])
    assert f"{pushed.rsplit(':', 1)[0]}@{digest}" in script and "--read-only" in script
    assert not (job_dir / "bundle").exists()
    state, code, out = run_job(job_dir)
    assert (state, code) == ("COMPLETED", 0), out
    assert "runtime check passed" in out and "accuracy=" in out
    record = max((project / "outputs" / ".reprolock-runs").glob("*-node0.json"),
                 key=lambda p: p.stat().st_mtime)
    assert json.loads(record.read_text())["job"]["manifestDigest"] == digest
    assert run_cli("verify", "-C", project, "--run", record).returncode == 0


def test_a_pyxis_job_names_the_image_by_digest_in_enroots_form(project: Path,
                                                                pushed: str) -> None:
    outcome = write_job_from(project, "on-pyxis", f"registry:{pushed}", "--runtime", "pyxis")
    script = (Path(str(outcome["jobDir"])) / "job.sbatch").read_text()
    host, _, name = pushed.rsplit(":", 1)[0].partition("/")
    assert f"--container-image={host}#{name}@{outcome['manifestDigest']}" in script
    assert ":/.reprolock-run:ro," in script and "--export=MASTER_ADDR" in script


def test_a_registry_image_needs_a_runtime_that_pulls(project: Path, pushed: str) -> None:
    proc = run_cli("job", "-C", project, "--engine", "slurm", "--image", f"registry:{pushed}")
    assert proc.returncode == 2 and "--runtime docker or pyxis" in proc.stderr


def write_job_from(project: Path, name: str, image: str, *extra: str) -> dict[str, object]:
    proc = run_cli("job", "-C", project, "--engine", "slurm", "--name", name, "--image",
                   image, "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    outcome: dict[str, object] = json.loads(proc.stdout)
    return outcome


def test_the_sbatch_script_submits_through_reprolock(project: Path) -> None:
    proc = run_cli("job", "-C", project, "--engine", "slurm", "--name", "submitted",
                   "--image", f"oci-layout:{project.parent / 'image'}:example", "--submit",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    job_id = int(json.loads(proc.stdout)["jobId"])
    assert slurm.wait(job_id, timeout=180) == ("COMPLETED", 0)
    assert subprocess.run(["scontrol", "show", "job", str(job_id)], capture_output=True,
                          check=False).returncode == 0


TORCH_WHEEL = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
TORCH_DEPS = Path(__file__).resolve().parent.parent / ".venv" / "torch-wheels"
DDP_TRAIN = '''\
import os
import sys
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
data = torch.randn(256, 8, generator=torch.Generator().manual_seed(1))
target = data @ torch.arange(1.0, 9.0) + 0.5
model = DistributedDataParallel(torch.nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
shard = slice(rank * 256 // world, (rank + 1) * 256 // world)
for _ in range(30):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(data[shard]).squeeze(1), target[shard])
    loss.backward()
    optimizer.step()
total = loss.detach().clone()
dist.all_reduce(total)
if rank == 0:
    line = f"world={world} loss={total.item() / world:.10f}"
    print(line, flush=True)
    with open(os.path.join(os.environ["REPROLOCK_OUTPUTS"], "loss.txt"), "a") as out:
        out.write(line + "\\n")
dist.barrier()  # no rank tears gloo down while another still talks to it
dist.destroy_process_group()
# gloo's threads can still be joinable when the interpreter's static destructors run,
# and then the rank aborts ("terminate called without an active exception", exit 134;
# seen once in CI after the loss was written): leave without those destructors
sys.stdout.flush()
os._exit(0)
'''


@pytest.fixture(scope="module")
def ddp_project(tmp_path_factory: pytest.TempPathFactory, cluster: None) -> Path:
    """torch 2.13.0 (the CPU wheel on this machine) on the Debian base, locked with no
    index from the wheel and its requirements, built into an OCI layout."""
    require((BASE / "index.json").is_file(),
            f"the Debian base is missing: run python fixtures/make_base.py {BASE}")
    require(TORCH_WHEEL.is_file(), f"{TORCH_WHEEL} is not on this machine")
    require((TORCH_DEPS / ".done").is_file(), "run .ci/setup: it downloads torch's requirements")
    root = tmp_path_factory.mktemp("ddp") / "ddp"
    wheels = root / "wheels"
    wheels.mkdir(parents=True)
    for wheel in [TORCH_WHEEL, *TORCH_DEPS.glob("*.whl")]:
        (wheels / wheel.name).symlink_to(wheel)
    (root / ".reprolock").mkdir()
    (root / ".reprolock" / "base").symlink_to(BASE)
    (root / "requirements.in").write_text("torch==2.13.0\n")
    (root / "train_ddp.py").write_text(DDP_TRAIN)
    (root / "reprolock.toml").write_text(
        'base = "oci-layout:.reprolock/base:bookworm"\nplatform = "linux/amd64"\n'
        'resolver = "uv"\n[dependencies]\nrequirements = ["requirements.in"]\n'
        '[index]\nno-index = true\nfind-links = ["wheels"]\n[code]\nexclude = ["wheels/", '
        '"outputs/"]\n[image]\nworkdir = "/app"\nenv = { PYTHONHASHSEED = "0" }\n')
    locked = run_cli("lock", "--no-sbom", "-C", root)
    assert locked.returncode == 0, locked.stderr
    built = run_cli("build", "-C", root, "--output", f"oci:{root.parent / 'image'}:ddp")
    assert built.returncode == 0, built.stderr
    return root


def test_two_process_torch_training_reaches_the_same_loss_every_run(ddp_project: Path) -> None:
    proc = run_cli("job", "-C", ddp_project, "--engine", "slurm", "--name", "ddp",
                   "--image", f"oci-layout:{ddp_project.parent / 'image'}:ddp",
                   "--procs-per-node", "2", "--fast", "--json", "--", "train_ddp.py")
    assert proc.returncode == 0, proc.stderr
    job_dir = Path(json.loads(proc.stdout)["jobDir"])
    assert "--procs-per-node 2" in (job_dir / "job.sbatch").read_text()
    runs = [run_job(job_dir) for _ in range(2)]
    for state, code, out in runs:
        assert (state, code) == ("COMPLETED", 0), out
        assert "runtime check passed" in out and "world=2 loss=" in out
    losses = (ddp_project / "outputs" / "loss.txt").read_text().splitlines()
    assert len(losses) == 2 and losses[0] == losses[1], losses
    runs_dir = ddp_project / "outputs" / ".reprolock-runs"
    nodes = sorted(runs_dir.glob("*-node0.json"), key=lambda p: p.stat().st_mtime)
    assert len(nodes) == 2
    node = json.loads(nodes[-1].read_text())
    assert node["command"][:3] == ["torchrun", "--nnodes=1", "--nproc-per-node=2"]
    # one record per process too, each with its rank, written by the process's wrapper
    ranks = sorted(runs_dir.glob(f"{node['job']['id']}-node0-rank*.json"))
    assert [json.loads(r.read_text())["job"]["rank"] for r in ranks] == [0, 1]
    assert all(json.loads(r.read_text())["command"] == ["python", "train_ddp.py"]
               for r in ranks)
    for record in (nodes[-1], *ranks):
        assert run_cli("verify", "-C", ddp_project, "--run", record).returncode == 0


def test_a_zstd_image_is_refused_before_umoci_runs(ddp_project: Path, tmp_path: Path) -> None:
    project = tmp_path / "zstd"
    shutil.copytree(ddp_project, project, symlinks=True, ignore=shutil.ignore_patterns(
        "outputs", "jobs"))
    assert run_cli("lock", "--no-sbom", "--compression", "zstd", "-C", project).returncode == 0
    assert run_cli("build", "-C", project, "--output", f"oci:{tmp_path / 'image'}:z"
                   ).returncode == 0
    proc = run_cli("job", "-C", project, "--engine", "slurm", "--image",
                   f"oci-layout:{tmp_path / 'image'}:z", "-o", tmp_path / "job")
    assert proc.returncode == 2, proc.stderr
    assert "zstd layers" in proc.stderr and "--compression gzip" in proc.stderr
    assert not (tmp_path / "job").exists()
