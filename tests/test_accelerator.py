"""Issue 13, the GPU contract: the lock says which CUDA its wheels need and the oldest
driver that runs it; 'reprolock run --gpus' checks the host's driver before it starts
anything. This machine has no GPU: the decision is tested in process with a probe that
answers as a host would, and the no-driver path for real."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reprolock.engine.nvidia import HostGpus, host_gpus
from reprolock.errors import HostError
from reprolock.lock.accelerator import cuda_of_packages, driver_problem
from reprolock.lock.model import Accelerator
from reprolock.schemas import validate
from tests.support.cli import run_cli
from tests.support.index import LocalIndex
from tests.support.wheels import build_wheel

PYPI_CUDA13 = [("torch", "2.13.0"), ("cuda-toolkit", "13.0.3"),
               ("nvidia-cudnn-cu13", "9.13.0.50"), ("nvidia-nccl-cu13", "2.27.7"),
               ("triton", "3.5.0"), ("numpy", "2.3.4")]


@pytest.mark.parametrize(("packages", "cuda", "driver"), [
    (PYPI_CUDA13, "13.0", "580.65.06"),
    ([("torch", "2.6.0+cu126"), ("torchvision", "0.21.0+cu126")], "12.6", "525.60.13"),
    ([("nvidia-cuda-runtime-cu12", "12.4.127"), ("jax", "0.4.30")], "12.4", "525.60.13"),
    ([("nvidia-cuda-runtime-cu11", "11.8.89")], "11.8", "450.80.02"),
])
def test_the_cuda_of_the_locked_wheels(packages: list[tuple[str, str]], cuda: str,
                                       driver: str) -> None:
    found = cuda_of_packages(packages)
    assert (found.kind, found.cuda, found.min_driver) == ("cuda", cuda, driver)
    assert found.evidence and all(" " in e for e in found.evidence)


def test_cudnn_and_nccl_are_named() -> None:
    found = cuda_of_packages(PYPI_CUDA13)
    assert (found.cudnn, found.nccl) == ("9.13.0.50", "2.27.7")
    assert "cuda-toolkit 13.0.3" in found.evidence


@pytest.mark.parametrize("packages", [[("torch", "2.13.0+cpu")], [("numpy", "2.3.4")], []])
def test_cpu_only_locks_say_so(packages: list[tuple[str, str]]) -> None:
    assert cuda_of_packages(packages) == Accelerator("cpu")
    assert cuda_of_packages(packages).to_json() == {"kind": "cpu"}


@pytest.mark.parametrize(("driver", "ok"), [("570.172.08", False), ("580.65.05", False),
                                            ("580.65.06", True), ("590.1", True)])
def test_the_driver_must_be_at_least_the_minimum(driver: str, ok: bool) -> None:
    problem = driver_problem(driver, cuda_of_packages(PYPI_CUDA13))
    assert (problem is None) == ok
    if problem:
        assert driver in problem and "580.65.06" in problem and "13.0" in problem


def _lock(cuda: bool) -> object:
    from types import SimpleNamespace

    packages = PYPI_CUDA13 if cuda else [("numpy", "2.3.4")]
    return SimpleNamespace(accelerator=cuda_of_packages(packages))


HOST = HostGpus("575.51.03", (("NVIDIA A100-SXM4-80GB", "8.0"),), "nvml")


def test_preflight_without_gpus_asks_nothing() -> None:
    from reprolock.workflows.run import gpu_preflight

    def probe() -> HostGpus | None:
        raise AssertionError("probed without --gpus")

    assert gpu_preflight(_lock(True), None, probe) is None  # type: ignore[arg-type]


def test_preflight_refuses_an_old_driver_naming_both() -> None:
    from reprolock.workflows.run import gpu_preflight

    with pytest.raises(HostError) as refused:
        gpu_preflight(_lock(True), "all", lambda: HOST)  # type: ignore[arg-type]
    assert "575.51.03" in refused.value.message and "580.65.06" in refused.value.message
    assert refused.value.exit_code == 2 and "+cu126" in (refused.value.hint or "")


def test_preflight_passes_a_new_driver_and_returns_the_host() -> None:
    from reprolock.workflows.run import gpu_preflight

    host = HostGpus("580.82.07", HOST.gpus, "nvidia-smi")
    assert gpu_preflight(_lock(True), "1", lambda: host) == host  # type: ignore[arg-type]
    assert host.to_json()["gpus"] == [{"model": "NVIDIA A100-SXM4-80GB",
                                       "computeCapability": "8.0"}]


def test_preflight_without_a_driver_is_a_clear_error() -> None:
    from reprolock.workflows.run import gpu_preflight

    with pytest.raises(HostError, match="no NVIDIA driver"):
        gpu_preflight(_lock(False), "all", lambda: None)  # type: ignore[arg-type]


def test_preflight_warns_for_a_cpu_only_lock(capsys: pytest.CaptureFixture[str]) -> None:
    from reprolock.workflows.run import gpu_preflight

    assert gpu_preflight(_lock(False), "all", lambda: HOST) == HOST  # type: ignore[arg-type]
    assert "CPU-only lock" in capsys.readouterr().err


# -- for real: the lock records it; this host has no driver ------------------------------

@pytest.fixture(scope="module")
def cuda_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    dest = tmp_path_factory.mktemp("cuda-wheels")
    index = LocalIndex(tmp_path_factory.mktemp("cuda-index"))
    for wheel in (build_wheel(dest, "torch", "2.6.0+cu126", requires=["nvidia-nccl-cu12"]),
                  build_wheel(dest, "nvidia-nccl-cu12", "2.21.5")):
        index.add(wheel)
    with index:
        yield index


def test_the_lock_records_the_gpu_contract(make_project: Callable[..., Path],
                                           cuda_index: LocalIndex) -> None:
    root = make_project(requirements="torch==2.6.0+cu126\n", index_url=cuda_index.url)
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((root / "reprolock.lock.json").read_text())
    validate(data, "lock", source="lock")
    assert data["accelerator"] == {"kind": "cuda", "cuda": "12.6", "minDriver": "525.60.13",
                                   "nccl": "2.21.5",
                                   "evidence": ["nvidia-nccl-cu12 2.21.5",
                                                "torch 2.6.0+cu126"]}


def test_a_cpu_lock_says_so_and_a_forged_kind_is_refused(
        make_project: Callable[..., Path]) -> None:
    root = make_project()
    assert run_cli("lock", "-C", root, "--no-build").returncode == 0
    path = root / "reprolock.lock.json"
    data = json.loads(path.read_text())
    assert data["accelerator"] == {"kind": "cpu"}
    data["accelerator"] = {"kind": "rocm"}
    path.write_text(json.dumps(data))
    proc = run_cli("export", "-C", root)
    assert proc.returncode == 2 and "accelerator" in proc.stderr, proc.stderr


@pytest.mark.docker
def test_run_with_gpus_on_a_host_without_a_driver_starts_nothing(
        make_project: Callable[..., Path], tmp_path: Path) -> None:
    """This machine has no NVIDIA driver: the preflight says so, exit 2, no record."""
    from tests.support.services import docker_available, require

    require(host_gpus() is None, "this host has an NVIDIA driver")
    require(docker_available(), "no Docker Engine is running")
    root = make_project()
    assert run_cli("lock", "-C", root, "--no-build").returncode == 0
    record = tmp_path / "r.json"
    proc = run_cli("run", "-C", root, "--gpus", "all", "--record", record, "--", "true")
    assert proc.returncode == 2, proc.stderr
    assert "no NVIDIA driver" in proc.stderr and "Traceback" not in proc.stderr
    assert not record.exists()


# -- what the NVIDIA container toolkit reads ----------------------------------------------

@pytest.mark.parametrize(("base", "required"), [
    ({}, "cuda>=12.6"),
    ({"NVIDIA_REQUIRE_CUDA": "cuda>=12.8 brand=tesla,driver>=535"},
     "cuda>=12.8 brand=tesla,driver>=535"),  # the base's toolkit needs more: kept
    ({"NVIDIA_REQUIRE_CUDA": "cuda>=12.1"}, "cuda>=12.6"),  # the wheels need more
])
def test_cuda_env_requires_the_wheels_cuda(base: dict[str, str], required: str) -> None:
    from reprolock.oci.contract import image_env

    env = image_env(base, "/opt/venv", {}, cuda_of_packages([("torch", "2.6.0+cu126")]))
    assert env["NVIDIA_REQUIRE_CUDA"] == required
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    declared = image_env(base, "/opt/venv", {"NVIDIA_VISIBLE_DEVICES": "0"},
                         cuda_of_packages([("torch", "2.6.0+cu126")]))
    assert declared["NVIDIA_VISIBLE_DEVICES"] == "0"  # what the user declares wins


def test_a_cpu_lock_adds_no_nvidia_variables() -> None:
    from reprolock.oci.contract import image_env

    env = image_env({}, "/opt/venv", {}, Accelerator("cpu"))
    assert not [k for k in env if k.startswith("NVIDIA_")]


def test_a_cuda_image_carries_the_requirement_and_verifies(
        make_project: Callable[..., Path], cuda_index: LocalIndex, tmp_path: Path) -> None:
    root = make_project(requirements="torch==2.6.0+cu126\n", index_url=cuda_index.url)
    proc = run_cli("lock", "-C", root, "--no-sbom")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "image"
    proc = run_cli("build", "-C", root, "-o", f"oci:{out}", "--no-attach")
    assert proc.returncode == 0, proc.stderr
    index = json.loads((out / "index.json").read_text())
    manifest = json.loads((out / "blobs" / "sha256" /
                           index["manifests"][0]["digest"].split(":")[1]).read_text())
    config = json.loads((out / "blobs" / "sha256" /
                         manifest["config"]["digest"].split(":")[1]).read_text())
    assert "NVIDIA_REQUIRE_CUDA=cuda>=12.6" in config["config"]["Env"]
    proc = run_cli("verify", "-C", root, "--image", f"oci:{out}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- a base that carries a CUDA toolkit ---------------------------------------------------

@pytest.mark.parametrize(("env", "found"), [
    ({"CUDA_VERSION": "12.4.1"}, "12.4.1"), ({"CUDA_VERSION": "13.0"}, "13.0"),
    ({"CUDA_VERSION": "12.4.1\nNVIDIA_REQUIRE_CUDA=x"}, None), ({"CUDA_VERSION": "latest"}, None),
    ({}, None)])
def test_the_base_cuda_is_a_plain_version_or_nothing(env: dict[str, str],
                                                     found: str | None) -> None:
    from reprolock.lock.accelerator import base_cuda

    assert base_cuda(env) == found


def test_wheels_and_base_of_one_cuda_major_agree() -> None:
    from reprolock.lock.accelerator import with_base

    merged, warning = with_base(cuda_of_packages([("torch", "2.6.0+cu126")]), "12.4.1")
    assert warning is None and merged.base_cuda == "12.4.1" and merged.cuda == "12.6"
    assert Accelerator.from_json(merged.to_json()) == merged


def test_wheels_and_base_of_two_cuda_majors_warn_naming_both() -> None:
    from reprolock.lock.accelerator import with_base

    merged, warning = with_base(cuda_of_packages(PYPI_CUDA13), "12.4.1")
    assert warning is not None and "13.0" in warning and "12.4.1" in warning
    assert merged.min_driver == "580.65.06"  # the driver must run both: the higher one


def test_cpu_wheels_on_a_cuda_base_take_the_base_toolkit() -> None:
    from reprolock.lock.accelerator import with_base

    merged, warning = with_base(Accelerator("cpu"), "12.4.1")
    assert warning is None
    assert (merged.kind, merged.cuda, merged.min_driver) == ("cuda", "12.4", "525.60.13")
    assert merged.evidence == ("base CUDA_VERSION 12.4.1",)


def test_a_lock_on_a_cuda_base_records_its_toolkit_and_warns_on_another_major(
        make_project: Callable[..., Path], cuda_index: LocalIndex, tmp_path: Path) -> None:
    """A base built here that says CUDA_VERSION=13.0.1, as NVIDIA's images do, under
    wheels built for CUDA 12.6."""
    from tests.support.images import make_base

    layout = tmp_path / "cuda-base"
    make_base(layout, tmp_path / "rootfs", tag="cuda",
              env=["PATH=/usr/bin:/bin", "CUDA_VERSION=13.0.1"])
    root = make_project(requirements="torch==2.6.0+cu126\n", index_url=cuda_index.url)
    config = root / "reprolock.toml"
    config.write_text("\n".join(
        f'base = "oci-layout:{layout}:cuda"' if line.startswith("base =") else line
        for line in config.read_text().splitlines()) + "\n")
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 0, proc.stderr
    assert "CUDA 12.6" in proc.stderr and "CUDA 13.0.1 toolkit" in proc.stderr
    accelerator = json.loads((root / "reprolock.lock.json").read_text())["accelerator"]
    assert accelerator["baseCuda"] == "13.0.1" and accelerator["minDriver"] == "580.65.06"


def test_the_record_keeps_the_variables_that_decide_repeatability() -> None:
    from reprolock.workflows.run import determinism_env

    env = {"PYTHONHASHSEED": "0", "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "NCCL_ALGO": "Ring",
           "OMP_NUM_THREADS": "1", "HOME": "/root", "AWS_SECRET_ACCESS_KEY": "x" * 40}
    assert determinism_env(env) == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "NCCL_ALGO": "Ring",
                                    "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
