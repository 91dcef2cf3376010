"""Issue 13, outside the default run (``-m network``): the real CUDA stack from PyPI.
``torch==2.13.0`` for linux/amd64 pulls CUDA 13 (``cuda-toolkit[...]==13.0.3``, cuDNN,
NCCL, triton); every one of them is pinned with its hash, and the accelerator section
names CUDA 13 and the driver it needs. Locks only (``--no-build``): several gigabytes of
wheels are not downloaded."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.version import Version

from reprolock.schemas import validate
from tests.support.cli import run_cli

pytestmark = pytest.mark.network


def test_torch_2_13_0_locks_from_pypi_for_linux_amd64(make_project: Callable[..., Path]) -> None:
    root = make_project(requirements="torch==2.13.0\n", index_url="https://pypi.org/simple")
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 0, proc.stderr
    lock = json.loads((root / "reprolock.lock.json").read_text())
    validate(lock, "lock", source="lock")
    packages = {p["name"]: p for p in lock["packages"]}
    assert packages["torch"]["version"] == "2.13.0"
    assert Version(packages["cuda-toolkit"]["version"]) == Version("13.0.3")  # 13.0.3.0
    for name in ("nvidia-cudnn-cu13", "nvidia-nccl-cu13", "triton"):
        assert name in packages, sorted(packages)
    for pkg in packages.values():
        assert re.fullmatch(r"[0-9a-f]{64}", pkg["artifact"]["sha256"])
        assert pkg["artifact"]["filename"].endswith(("x86_64.whl", "-any.whl")), pkg
    # the extras of cuda-toolkit: each component is a locked package of its own
    assert {"nvidia-cublas", "nvidia-cuda-runtime"} <= set(packages) or \
        any(n.startswith("nvidia-cublas") for n in packages), sorted(packages)
    accelerator = lock["accelerator"]
    assert accelerator["kind"] == "cuda" and accelerator["cuda"].startswith("13.")
    assert accelerator["minDriver"] == "580.65.06"
