"""Issue 13: indexes shaped like PyTorch's. A file served with no hash is downloaded and
hashed by reprolock, and the lock says the hash was computed, not served; a file whose
bytes are not the hash the index serves is refused, naming both. A local index built in
the session serves local versions (+cu126, +cpu), a hashless file and a mismatching one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reprolock.schemas import validate
from tests.support.cli import run_cli
from tests.support.index import LocalIndex
from tests.support.wheels import build_wheel

RESOLVERS = ["uv", "pip-tools"]
WRONG = "e" * 64


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dest = tmp_path_factory.mktemp("torchlike")
    return {
        "cu126": build_wheel(dest, "torchlike", "2.6.0+cu126",
                             modules={"torchlike/__init__.py": "cuda = '12.6'\n"}),
        "cpu": build_wheel(dest, "torchlike", "2.6.0+cpu",
                           modules={"torchlike/__init__.py": "cuda = None\n"}),
        "nohash": build_wheel(dest, "nohash", "1.0"),
        "changed": build_wheel(dest, "changed", "1.0"),
    }


@pytest.fixture(scope="module")
def torch_index(tmp_path_factory: pytest.TempPathFactory,
                wheels: dict[str, Path]) -> Iterator[LocalIndex]:
    index = LocalIndex(tmp_path_factory.mktemp("torch-index"))
    index.add(wheels["cu126"])
    index.add(wheels["cpu"], served="")  # no hash, as some PyTorch-style indexes serve
    index.add(wheels["nohash"], served="")
    index.add(wheels["changed"], served=WRONG)  # bytes that are not the served hash
    with index:
        yield index


def locked(root: Path) -> dict[str, dict]:
    data = json.loads((root / "reprolock.lock.json").read_text())
    validate(data, "lock", source="lock")
    return {p["name"]: p for p in data["packages"]}


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_file_served_without_a_hash_is_hashed_here_and_says_so(
        make_project: Callable[..., Path], torch_index: LocalIndex,
        wheels: dict[str, Path], resolver: str) -> None:
    root = make_project(requirements="nohash==1.0\ntorchlike==2.6.0+cpu\n",
                        resolver=resolver, index_url=torch_index.url)
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 0, proc.stderr
    packages = locked(root)
    for name, wheel in (("nohash", wheels["nohash"]), ("torchlike", wheels["cpu"])):
        artifact = packages[name]["artifact"]
        assert artifact["sha256"] == sha(wheel)
        assert artifact["hashSource"] == "computed"
    assert packages["torchlike"]["version"] == "2.6.0+cpu"


def test_a_served_hash_is_recorded_as_served(make_project: Callable[..., Path],
                                             torch_index: LocalIndex,
                                             wheels: dict[str, Path]) -> None:
    root = make_project(requirements="torchlike==2.6.0+cu126\n", index_url=torch_index.url)
    proc = run_cli("lock", "-C", root, "--no-build")
    assert proc.returncode == 0, proc.stderr
    artifact = locked(root)["torchlike"]["artifact"]
    assert artifact["sha256"] == sha(wheels["cu126"]) and "hashSource" not in artifact


def test_bytes_that_are_not_the_served_hash_are_refused_naming_both(
        make_project: Callable[..., Path], torch_index: LocalIndex,
        wheels: dict[str, Path]) -> None:
    """The lock builds the image, so it fetches every wheel: the file's bytes are not the
    hash the index serves (and the resolver pinned); no lock is written."""
    root = make_project(requirements="changed==1.0\n", index_url=torch_index.url)
    proc = run_cli("lock", "-C", root, "--no-sbom")
    assert proc.returncode == 2, proc.stderr
    assert WRONG in proc.stderr and sha(wheels["changed"]) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (root / "reprolock.lock.json").exists()


@pytest.fixture(scope="module")
def family_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    dest = tmp_path_factory.mktemp("family")
    index = LocalIndex(tmp_path_factory.mktemp("family-index"))
    for name, version in (("torch", "2.6.0+cu126"), ("torch", "2.6.0+cpu"),
                          ("torchvision", "0.21.0+cu126"), ("torchvision", "0.21.0+cpu"),
                          ("torchaudio", "2.6.0")):  # only as PyPI builds it
        index.add(build_wheel(dest, name, version))
    with index:
        yield index


@pytest.mark.parametrize(("requirements", "ok"), [
    ("torch==2.6.0+cu126\ntorchvision==0.21.0+cu126\n", True),
    ("torch==2.6.0+cpu\ntorchvision==0.21.0+cpu\n", True),
    ("torch==2.6.0+cu126\ntorchvision==0.21.0+cpu\n", False),
    ("torch==2.6.0+cu126\ntorchaudio==2.6.0\n", False),  # PyPI's build: another CUDA
])
def test_the_torch_family_must_come_from_one_build(make_project: Callable[..., Path],
                                                   family_index: LocalIndex,
                                                   requirements: str, ok: bool) -> None:
    root = make_project(requirements=requirements, index_url=family_index.url)
    proc = run_cli("lock", "-C", root, "--no-build")
    if ok:
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 2, proc.stderr
    assert "torch +cu126" in proc.stderr and ("torchvision +cpu" in proc.stderr
                                              or "torchaudio (no local label)" in proc.stderr)
    assert "different builds" in proc.stderr and not (root / "reprolock.lock.json").exists()
