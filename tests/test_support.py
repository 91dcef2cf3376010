"""Tests for the hand-built wheels and the local package index used by the suite."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import requests

from tests.support.index import LocalIndex
from tests.support.wheels import build_sdist, build_wheel, record_hash

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    cmd = [sys.executable, "-m", "pip", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _read_member(wheel: Path, member: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member).decode()


def test_env_is_hermetic() -> None:
    assert os.environ["PIP_CONFIG_FILE"] == os.devnull
    assert os.environ["UV_NO_CONFIG"] == "1"
    assert "XDG_CACHE_HOME" in os.environ
    assert not [k for k in os.environ if k.startswith("DOCKER_")]


def test_wheel_installs_and_imports(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist", "toolz-lite", "0.1.0")
    target = tmp_path / "target"
    _pip("install", "--no-deps", "--no-index", "--target", str(target), str(wheel))
    code = "import toolz_lite; print(toolz_lite.__version__)"
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.1.0"
    assert (target / "toolz_lite-0.1.0.dist-info" / "METADATA").is_file()


def test_wheel_name_normalization(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "Toolz.Lite", "0.1")
    assert wheel.name == "toolz_lite-0.1-py3-none-any.whl"


def test_wheel_record_matches_contents(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "tinyml", "1.0.0", extra_files={"tinyml/data.bin": b"\x00\x01"})
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        rows = list(csv.reader(io.StringIO(zf.read("tinyml-1.0.0.dist-info/RECORD").decode())))
        recorded = {row[0]: row for row in rows}
        assert set(recorded) == set(names)
        assert names[-1] == "tinyml-1.0.0.dist-info/RECORD"
        for name in names:
            info = zf.getinfo(name)
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert (info.external_attr >> 16) & 0o777 == 0o644
            if name.endswith("RECORD"):
                assert recorded[name][1:] == ["", ""]
                continue
            data = zf.read(name)
            assert recorded[name][1:] == [record_hash(data), str(len(data))]


def test_wheel_metadata_and_tags(tmp_path: Path) -> None:
    tag = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
    wheel = build_wheel(tmp_path, "nativepkg", "2.0.0", tag=tag, requires=["a>=1", "b<2"])
    assert wheel.name == f"nativepkg-2.0.0-{tag}.whl"
    metadata = _read_member(wheel, "nativepkg-2.0.0.dist-info/METADATA")
    assert "Metadata-Version: 2.1\n" in metadata
    assert "Requires-Dist: a>=1\nRequires-Dist: b<2\n" in metadata
    wheel_file = _read_member(wheel, "nativepkg-2.0.0.dist-info/WHEEL")
    assert "Root-Is-Purelib: false\n" in wheel_file
    assert "Tag: cp311-cp311-manylinux_2_17_x86_64\n" in wheel_file
    assert "Tag: cp311-cp311-manylinux2014_x86_64\n" in wheel_file
    top_level = _read_member(wheel, "nativepkg-2.0.0.dist-info/top_level.txt")
    assert top_level == "nativepkg\n"


def test_wheel_without_top_level(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "tinyml", "1.0.0", top_level_txt=False)
    with zipfile.ZipFile(wheel) as zf:
        assert "tinyml-1.0.0.dist-info/top_level.txt" not in zf.namelist()


def test_builds_are_deterministic(tmp_path: Path) -> None:
    first = build_wheel(tmp_path / "a", "tinyml", "1.0.0", requires=["tinyconfig>=1.0"])
    second = build_wheel(tmp_path / "b", "tinyml", "1.0.0", requires=["tinyconfig>=1.0"])
    assert first.read_bytes() == second.read_bytes()
    sdist_a = build_sdist(tmp_path / "a", "sdistonly", "1.0.0")
    sdist_b = build_sdist(tmp_path / "b", "sdistonly", "1.0.0")
    assert sdist_a.read_bytes() == sdist_b.read_bytes()


def test_sdist_layout(tmp_path: Path) -> None:
    sdist = build_sdist(tmp_path, "sdistonly", "1.0.0")
    assert sdist.name == "sdistonly-1.0.0.tar.gz"
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
        pkg_info = tar.extractfile("sdistonly-1.0.0/PKG-INFO")
        assert pkg_info is not None
        assert "Name: sdistonly\nVersion: 1.0.0\n" in pkg_info.read().decode()
    assert "sdistonly-1.0.0/pyproject.toml" in names


def test_wheelhouse_contents(wheelhouse: Path) -> None:
    names = sorted(p.name for p in wheelhouse.iterdir())
    assert "sdistonly-1.0.0.tar.gz" in names
    assert "toolz_lite-0.1.0-py3-none-any.whl" in names
    assert "conflict_a-1.0-py3-none-any.whl" in names
    assert len([n for n in names if n.startswith("nativepkg-2.0.0-cp311")]) == 2


def test_index_serves_html(local_index: LocalIndex, wheelhouse: Path) -> None:
    root = requests.get(f"{local_index.url}/", timeout=10)
    assert root.status_code == 200
    assert root.headers["Content-Type"].startswith("text/html")
    assert 'href="tinyml/"' in root.text
    page = requests.get(f"{local_index.url}/tinyml/", timeout=10)
    digest = hashlib.sha256((wheelhouse / "tinyml-1.0.0-py3-none-any.whl").read_bytes())
    href = f'href="../../files/tinyml-1.0.0-py3-none-any.whl#sha256={digest.hexdigest()}"'
    assert href in page.text


def test_index_serves_json(local_index: LocalIndex, wheelhouse: Path) -> None:
    resp = requests.get(f"{local_index.url}/tinyml/", headers={"Accept": JSON_ACCEPT}, timeout=10)
    assert resp.headers["Content-Type"] == JSON_ACCEPT
    data = json.loads(resp.text)
    assert data["meta"] == {"api-version": "1.1"}
    assert data["name"] == "tinyml"
    files = {f["filename"]: f for f in data["files"]}
    entry = files["tinyml-1.1.0-py3-none-any.whl"]
    content = (wheelhouse / entry["filename"]).read_bytes()
    assert entry["hashes"] == {"sha256": hashlib.sha256(content).hexdigest()}
    assert entry["size"] == len(content)
    download = requests.get(f"{resp.url}{entry['url']}", timeout=10)
    assert download.content == content


def test_index_redirects_to_normalized_name(local_index: LocalIndex) -> None:
    resp = requests.get(f"{local_index.url}/Toolz_Lite", timeout=10)
    assert resp.status_code == 200
    assert resp.url == f"{local_index.url}/toolz-lite/"
    assert requests.get(f"{local_index.url}/missing/", timeout=10).status_code == 404


def test_index_requires_python(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist", "tinyml", "1.0.0")
    with LocalIndex(tmp_path / "index") as index:
        index.add(wheel, requires_python=">=3.11")
        page = requests.get(f"{index.url}/tinyml/", timeout=10).text
        assert 'data-requires-python="&gt;=3.11"' in page
        resp = requests.get(f"{index.url}/tinyml/", headers={"Accept": JSON_ACCEPT}, timeout=10)
        assert resp.json()["files"][0]["requires-python"] == ">=3.11"


def test_index_basic_auth(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist", "tinyml", "1.0.0")
    with LocalIndex(tmp_path / "index", auth=("user", "pass")) as index:
        index.add(wheel)
        url = f"{index.url}/tinyml/"
        denied = requests.get(url, timeout=10)
        assert denied.status_code == 401
        assert denied.headers["WWW-Authenticate"].startswith("Basic")
        assert requests.get(url, auth=("user", "wrong"), timeout=10).status_code == 401
        assert requests.get(url, auth=("user", "pass"), timeout=10).status_code == 200
        file_url = f"{index.files_url}/{wheel.name}"
        assert requests.get(file_url, timeout=10).status_code == 401


def test_pip_download_from_local_index(local_index: LocalIndex, tmp_path: Path) -> None:
    _pip("download", "--no-deps", "--index-url", local_index.url, "tinyml==1.0.0",
         "-d", str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["tinyml-1.0.0-py3-none-any.whl"]


def test_pip_resolves_dependencies_from_local_index(
    local_index: LocalIndex, tmp_path: Path
) -> None:
    _pip("download", "--index-url", local_index.url, "tinyml", "-d", str(tmp_path))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["tinyconfig-1.2.0-py3-none-any.whl", "tinyml-1.1.0-py3-none-any.whl"]


def test_pip_selects_native_wheel_by_platform(local_index: LocalIndex, tmp_path: Path) -> None:
    _pip("download", "--no-deps", "--only-binary=:all:", "--platform", "manylinux2014_x86_64",
         "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
         "--index-url", local_index.url, "nativepkg==2.0.0", "-d", str(tmp_path))
    [wheel] = tmp_path.iterdir()
    assert "manylinux" in wheel.name


@pytest.mark.parametrize("auth", [None, ("user", "pass")])
def test_local_index_requires_start_for_url(tmp_path: Path, auth: tuple[str, str] | None) -> None:
    index = LocalIndex(tmp_path, auth=auth)
    with pytest.raises(RuntimeError):
        _ = index.url
