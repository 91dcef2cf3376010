"""Shared fixtures: a hermetic environment, a tiny wheelhouse and a local index."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from tests.support.index import LocalIndex
    from tests.support.wheels import build_sdist, build_wheel
except ImportError:  # tests/ itself is on sys.path (rootdir-less import mode)
    from support.index import LocalIndex  # type: ignore[no-redef]
    from support.wheels import build_sdist, build_wheel  # type: ignore[no-redef]

STRIPPED_ENV_PREFIXES = ("PIP_", "UV_", "DOCKER_")
NATIVE_MANYLINUX_TAG = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
NATIVE_MUSL_TAG = "cp311-cp311-musllinux_1_1_x86_64"


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
