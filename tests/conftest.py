"""Shared fixtures: a hermetic environment, a tiny wheelhouse and a local index."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.buildproject import make_build_project
from tests.support.images import make_base
from tests.support.index import LocalIndex
from tests.support.services import require, start_registry
from tests.support.wheels import build_sdist, build_wheel

STRIPPED_ENV_PREFIXES = ("PIP_", "UV_", "DOCKER_")
NATIVE_MANYLINUX_TAG = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
NATIVE_MUSL_TAG = "cp311-cp311-musllinux_1_1_x86_64"

# The markers pyproject.toml declares follow from the fixtures a test takes (directly or
# through another fixture): a fixture that needs an outside part marks every test using
# it, so `-m "not docker"` leaves out the tests that would start a container, and a new
# test that takes the fixture is marked without anyone remembering to. Fixtures local to
# a module are keyed by module too (several modules call theirs 'built'); a test that asks
# for a part in its own body carries the marker itself.
FIXTURE_MARKERS: dict[str, tuple[str, ...]] = {
    "registry": ("registry",),
    "build_project_template": ("syft",),  # its lock writes the SBOM with syft
}
MODULE_FIXTURE_MARKERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("test_example", "example"): ("debootstrap",),
    ("test_run", "built"): ("docker", "debootstrap"),
    ("test_faults", "ran"): ("docker", "debootstrap"),
    ("test_build_e2e", "built"): ("docker", "debootstrap"),
    ("test_runtime_attacks", "built"): ("docker", "debootstrap"),
    ("test_image_sources", "daemon_image"): ("docker",),
    ("test_verify_image_attacks", "own_registry"): ("registry",),
    ("test_model_chain", "built"): ("docker", "debootstrap"),
    ("test_run_attach", "built"): ("docker", "debootstrap"),
    ("test_run_signals", "built"): ("docker", "debootstrap"),
    ("test_job_slurm", "project"): ("debootstrap",),
    ("test_job_slurm", "ddp_project"): ("debootstrap",),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _mark_by_fixtures(items)
    # tests that reach PyPI run only when asked for by name (-m network): the default run
    # is hermetic; deselected, not skipped, so CI=true does not count them as missing
    if "network" not in (config.option.markexpr or ""):
        offline = [i for i in items if i.get_closest_marker("network") is None]
        if len(offline) != len(items):
            config.hook.pytest_deselected(items=[i for i in items if i not in offline])
            items[:] = offline


def _mark_by_fixtures(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if isinstance(
            item, pytest.Function) else ""
        fixtures = getattr(item, "fixturenames", ())
        wanted = {marker for name in fixtures for marker in (
            *FIXTURE_MARKERS.get(name, ()), *MODULE_FIXTURE_MARKERS.get((module, name), ()))}
        present = {mark.name for mark in item.iter_markers()}
        for marker in sorted(wanted - present):
            item.add_marker(marker)


@pytest.fixture(scope="session", autouse=True)
def hermetic_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the developer's pip/uv/docker configuration and caches out of tests."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(STRIPPED_ENV_PREFIXES):
                mp.delenv(key)
        mp.setenv("PIP_CONFIG_FILE", os.devnull)
        mp.setenv("UV_NO_CONFIG", "1")
        mp.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        mp.setenv("PIP_NO_INPUT", "1")
        mp.setenv("XDG_CACHE_HOME", str(cache))
        mp.setenv("UV_CACHE_DIR", str(cache / "uv"))
        yield


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of tiny, hand-built distributions."""
    dest = tmp_path_factory.mktemp("wheelhouse")
    build_wheel(dest, "tinyml", "1.0.0", requires=["tinyconfig>=1.0"])
    build_wheel(dest, "tinyml", "1.1.0", requires=["tinyconfig>=1.0"])
    build_wheel(dest, "tinyconfig", "1.0.0")
    build_wheel(dest, "tinyconfig", "1.2.0")
    build_wheel(dest, "toolz-lite", "0.1.0")
    build_wheel(dest, "nativepkg", "2.0.0", tag=NATIVE_MANYLINUX_TAG)
    build_wheel(dest, "nativepkg", "2.0.0", tag=NATIVE_MUSL_TAG)
    build_sdist(dest, "sdistonly", "1.0.0")
    build_wheel(dest, "conflict-a", "1.0", requires=["tinyconfig<1.0"])
    return dest


@pytest.fixture(scope="session")
def local_index(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Iterator[LocalIndex]:
    """A running PEP 503/691 index serving every file in the wheelhouse."""
    index = LocalIndex(tmp_path_factory.mktemp("index"))
    for dist in sorted(wheelhouse.iterdir()):
        index.add(dist)
    with index:
        yield index


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OCI registry (Debian's docker-registry) on 127.0.0.1; its host:port."""
    yield from start_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout holding tiny base images: 'tiny' (glibc 2.36, CPython 3.11.2),
    'musl' (musl 1.2) and 'arm' (arm64)."""
    layout = tmp_path_factory.mktemp("tiny-base") / "layout"
    work = tmp_path_factory.mktemp("tiny-rootfs")
    make_base(layout, work, tag="tiny")
    make_base(layout, work, tag="musl", musl=True, glibc="1.2")
    make_base(layout, work, tag="arm", arch="arm64")
    make_base(layout, work, tag="py312", python="3.12.1")
    return layout


@pytest.fixture
def make_project(tmp_path: Path, tiny_base: Path, local_index: LocalIndex) -> Callable[..., Path]:
    """Write a small training project that locks against the local index and tiny base."""

    def make(*, requirements: str = "tinyml\n", resolver: str = "uv", base_tag: str = "tiny",
             extra: str = "", index_url: str | None = None, name: str = "project") -> Path:
        root = tmp_path / name
        root.mkdir()
        (root / "requirements.in").write_text(requirements)
        (root / "train.py").write_text("import tinyml\nimport tinyconfig\n\nprint('ok')\n")
        url = index_url or local_index.url
        (root / "reprolock.toml").write_text(
            f'base = "oci-layout:{tiny_base}:{base_tag}"\n'
            f'resolver = "{resolver}"\n'
            f"{extra}\n"
            "[dependencies]\nrequirements = [\"requirements.in\"]\n"
            f'[index]\nurl = "{url}"\n'
        )
        return root

    return make



@pytest.fixture(scope="session")
def build_project_template(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """A locked project whose wheels and (uncompressed, zlib-independent) base are inside it."""
    return make_build_project(tmp_path_factory, wheelhouse)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system: a disk that fills up (full-disk tests of build and outputs)."""
    require(os.geteuid() == 0 and shutil.which("mount") is not None,
            "mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    require(proc.returncode == 0, f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
