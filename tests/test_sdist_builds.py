"""Issue 11: pure-Python sdists named in dependencies.build-from-source are built into
wheels reproducibly (isolated, hash-checked build requirements, SOURCE_DATE_EPOCH); the
lock records the sdist's and the wheel's sha256; a cold cache and 'verify' build again
and compare; an sdist that compiles code is refused, saying why.

Real build backends (flit_core, setuptools and wheel from PyPI, downloaded by .ci/setup)
served with tiny sdists by a local index on 127.0.0.1; real uv builds.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reprolock.schemas import validate
from tests.support.cli import run_cli
from tests.support.index import LocalIndex
from tests.support.services import require
from tests.support.wheels import build_sdist, build_wheel

BACKENDS = Path(sys.prefix) / "test-wheels"
RESOLVERS = ["uv", "pip-tools"]
SOURCES = 'build-from-source = ["srconly", "legacysrc"]'


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    backends = sorted(BACKENDS.glob("*.whl"))
    require(len(backends) == 3, f"the build backends are not in {BACKENDS}: run .ci/setup")
    dest = tmp_path_factory.mktemp("sdist-dists")
    made = {p.name.split("-")[0]: p for p in backends}
    made.update({
        "srconly": build_sdist(dest, "srconly", "1.0", backend="flit"),
        "legacysrc": build_sdist(dest, "legacysrc", "2.0", backend="legacy"),
        "usessrc": build_wheel(dest, "usessrc", "1.0", requires=["srconly"]),
        "withc": build_sdist(dest, "withc", "1.0", extra_files={"withc/_speed.c": b"int x;\n"}),
        # a wheel too: build-from-source takes the sdist all the same
        "both-wheel": build_wheel(dest, "both", "1.0"),
        "both-sdist": build_sdist(dest, "both", "1.0", backend="flit"),
    })
    return made


@pytest.fixture(scope="module")
def sdist_index(tmp_path_factory: pytest.TempPathFactory,
                dists: dict[str, Path]) -> Iterator[LocalIndex]:
    index = LocalIndex(tmp_path_factory.mktemp("sdist-index"))
    for path in dists.values():
        index.add(path)
    with index:
        yield index


@pytest.fixture
def project(make_project: Callable[..., Path], sdist_index: LocalIndex,
            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    def make(requirements: str, resolver: str = "uv", sources: str = SOURCES,
             name: str = "project") -> Path:
        root = make_project(requirements=requirements, resolver=resolver, name=name,
                            index_url=sdist_index.url)
        config = root / "reprolock.toml"
        config.write_text(config.read_text().replace(
            '[dependencies]\n', f'[dependencies]\n{sources}\n'))
        return root
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return make


def lock(root: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = run_cli("lock", "-C", root, *extra, env=None if env is None else {**os.environ, **env})
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


def locked(root: Path) -> dict[str, dict]:
    data = json.loads((root / "reprolock.lock.json").read_text())
    validate(data, "lock", source="lock")
    return {p["name"]: p for p in data["packages"]}


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_a_named_sdist_is_built_and_both_hashes_are_locked(
        project: Callable[..., Path], dists: dict[str, Path], resolver: str) -> None:
    root = project("usessrc\nlegacysrc\n", resolver)
    code, err = lock(root, "--no-build")
    assert code == 0, err
    packages = locked(root)
    for name, requires in (("srconly", {"flit-core": "3.9.0"}),
                           ("legacysrc", {"setuptools": "75.8.0", "wheel": "0.45.1"})):
        pkg = packages[name]
        build = pkg["build"]
        assert build["sdist"]["sha256"] == sha(dists[name])
        assert pkg["hashes"] == [f"sha256:{sha(dists[name])}"]
        assert pkg["artifact"]["builtFrom"] == "sdist"
        assert pkg["artifact"]["filename"].endswith("-none-any.whl")
        assert {r["name"]: r["version"] for r in build["requires"]} == requires
        backend = next(p for k, p in dists.items() if k.replace("_", "-") in requires)
        assert f"sha256:{sha(backend)}" in [h for r in build["requires"] for h in r["hashes"]]
        assert build["sourceDateEpoch"] == 315532800
        assert pkg["modules"] == [name]
    assert packages["usessrc"]["artifact"]["url"]  # a wheel from the index, as before


def test_the_built_wheel_is_the_same_on_a_cold_cache(
        project: Callable[..., Path], tmp_path: Path) -> None:
    """Two locks, each with an empty cache: the same wheel, byte for byte, and it is a
    wheel whose files all carry the fixed time."""
    first = project("srconly\n", name="first")
    second = project("srconly\n", name="second")
    assert lock(first, "--no-build", env={"XDG_CACHE_HOME": str(tmp_path / "c1")})[0] == 0
    assert lock(second, "--no-build", env={"XDG_CACHE_HOME": str(tmp_path / "c2")})[0] == 0
    one, two = locked(first)["srconly"], locked(second)["srconly"]
    assert one["artifact"] == two["artifact"]
    wheel = next((tmp_path / "c1").rglob(one["artifact"]["filename"]))
    assert sha(wheel) == one["artifact"]["sha256"]
    with zipfile.ZipFile(wheel) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_the_sdist_is_taken_even_where_a_wheel_exists(
        project: Callable[..., Path], dists: dict[str, Path]) -> None:
    root = project("both\n", sources='build-from-source = ["both"]')
    code, err = lock(root, "--no-build")
    assert code == 0, err
    both = locked(root)["both"]
    assert both["build"]["sdist"]["sha256"] == sha(dists["both-sdist"])
    assert both["artifact"]["sha256"] != sha(dists["both-wheel"])


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_an_sdist_not_named_fails_with_the_setting_to_use(
        project: Callable[..., Path], resolver: str) -> None:
    root = project("usessrc\n", resolver, sources="")
    code, err = lock(root, "--no-build")
    assert code == 2, err
    assert "build-from-source" in err
    if resolver == "uv":  # uv names the package it would have to build: the fix names it
        assert 'build-from-source = ["srconly"]' in err
    assert not (root / "reprolock.lock.json").exists()


def test_an_sdist_with_c_code_is_refused_before_it_runs(project: Callable[..., Path]) -> None:
    root = project("withc\n", sources='build-from-source = ["withc"]')
    code, err = lock(root, "--no-build")
    assert code == 2, err
    assert "withc/_speed.c" in err and "pure-Python" in err and "compiled language" in err
    assert not (root / "reprolock.lock.json").exists()


def test_a_backend_that_makes_a_platform_wheel_is_refused(tmp_path: Path) -> None:
    from reprolock.errors import ArtifactError
    from reprolock.imagebuild.sdist import _one_pure_wheel

    (tmp_path / "w").mkdir()
    build_wheel(tmp_path / "w", "native", "1.0",
                tag="cp311-cp311-manylinux_2_17_x86_64")
    with pytest.raises(ArtifactError, match="compiled code"):
        _one_pure_wheel(tmp_path / "w", "native", tmp_path / "native-1.0.tar.gz")


def test_build_and_verify_build_the_sdist_again_and_compare(
        project: Callable[..., Path], tmp_path: Path) -> None:
    """The lock builds the image with the built wheel in it; verify builds the sdist
    again (not from the cache) and the image again; a lock whose wheel hash is not what
    the sdist builds fails verify and a cold-cache build, naming both hashes."""
    root = project("srconly\n")
    code, err = lock(root)
    assert code == 0, err
    proc = run_cli("verify", "-C", root, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["sdists"]["ok"] and checks["rebuild"]["ok"]

    lock_path = root / "reprolock.lock.json"
    data = json.loads(lock_path.read_text())
    pkg = next(p for p in data["packages"] if p["name"] == "srconly")
    real = pkg["artifact"]["sha256"]
    pkg["artifact"]["sha256"] = "0" * 64
    lock_path.write_text(json.dumps(data))
    proc = run_cli("verify", "-C", root, "--json", "--no-rebuild")
    assert proc.returncode in (0, 1)  # (the signature- and freshness-level checks)
    proc = run_cli("verify", "-C", root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "✗ sdists" in proc.stdout and real in proc.stdout and "0" * 64 in proc.stdout
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cold")}
    proc = run_cli("build", "-C", root, "-o", f"oci:{tmp_path / 'out'}", env=env)
    assert proc.returncode != 0
    assert "not reproducible" in proc.stderr and real in proc.stderr


@pytest.mark.parametrize("change", [
    lambda p: p["artifact"].pop("builtFrom"),
    lambda p: p.pop("build"),
    lambda p: p["build"].update(sourceDateEpoch=5),
    lambda p: p["build"]["sdist"].update(filename="../../x.tar.gz"),
    lambda p: p["build"]["sdist"].update(path="a/../../x-1.0.tar.gz",
                                         filename="x-1.0.tar.gz"),
])
def test_a_malformed_build_record_is_refused(project: Callable[..., Path],
                                             change: Callable[[dict], object]) -> None:
    root = project("srconly\n")
    assert lock(root, "--no-build")[0] == 0
    lock_path = root / "reprolock.lock.json"
    data = json.loads(lock_path.read_text())
    change(next(p for p in data["packages"] if p["name"] == "srconly"))
    lock_path.write_text(json.dumps(data))
    proc = run_cli("build", "-C", root, "-o", f"oci:{root / 'out'}")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "reprolock.lock.json" in proc.stderr


def test_build_requirements_are_hash_checked(project: Callable[..., Path],
                                             tmp_path: Path) -> None:
    """A build requirement whose file is not the one locked: the build refuses it."""
    root = project("srconly\n")
    assert lock(root, "--no-build")[0] == 0
    lock_path = root / "reprolock.lock.json"
    data = json.loads(lock_path.read_text())
    pkg = next(p for p in data["packages"] if p["name"] == "srconly")
    pkg["build"]["requires"][0]["hashes"] = ["sha256:" + "1" * 64]
    lock_path.write_text(json.dumps(data))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cold")}
    proc = run_cli("build", "-C", root, "-o", f"oci:{tmp_path / 'out'}", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "flit" in proc.stderr and "1" * 64 in proc.stderr


def test_exports_name_the_sdist_not_the_wheel_built_here(
        project: Callable[..., Path], dists: dict[str, Path]) -> None:
    """The built wheel is on no index: pip and pylock readers get the locked sdist."""
    root = project("srconly\n")
    assert lock(root, "--no-build")[0] == 0
    proc = run_cli("export", "-C", root)
    assert proc.returncode == 0, proc.stderr
    assert f"srconly==1.0 \\\n    --hash=sha256:{sha(dists['srconly'])}" in proc.stdout
    proc = run_cli("export", "-C", root, "-f", "pylock")
    assert proc.returncode == 0, proc.stderr
    import tomllib

    [pkg] = tomllib.loads(proc.stdout)["packages"]
    assert pkg["sdist"]["hashes"]["sha256"] == sha(dists["srconly"]) and "wheels" not in pkg


def test_a_zip_sdist_member_in_a_method_zipfile_lacks_is_an_artifact_error(
        tmp_path: Path) -> None:
    """A .zip sdist whose pyproject.toml was zstd-compressed (uv reads it) ended in an
    internal error: zipfile raised NotImplementedError."""
    from reprolock.errors import ArtifactError
    from reprolock.imagebuild.sdist import read_sdist

    path = tmp_path / "odd-1.0.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("odd-1.0/PKG-INFO", "Metadata-Version: 2.1\nName: odd\nVersion: 1.0\n")
        archive.writestr("odd-1.0/pyproject.toml", '[build-system]\nrequires = []\n')
    data = bytearray(path.read_bytes())
    # mark pyproject.toml's data as zstd (method 93) in its local and central headers
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = data.find(signature, data.find(signature) + 1)  # the second member's
        data[start + offset:start + offset + 2] = (93).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"odd: cannot read odd-1\.0/pyproject\.toml"):
        read_sdist(path, name="odd")
