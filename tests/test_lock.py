"""`reprolock lock`, `lock --check` and `export`, end to end with the real resolvers
against a local index on 127.0.0.1 and a tiny base image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reprolock.lock.io import read_lock
from reprolock.schemas import validate
from tests.support.cli import run_cli
from tests.support.index import LocalIndex
from tests.support.wheels import build_wheel

RESOLVERS = ["uv", "pip-tools"]


def lock_json(root: Path) -> dict:
    return json.loads((root / "reprolock.lock.json").read_text())


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_lock_pins_and_hashes_every_package(make_project: Callable[..., Path],
                                            local_index: LocalIndex, resolver: str) -> None:
    root = make_project(resolver=resolver)
    proc = run_cli("lock", "--no-sbom", "-C", root)
    assert proc.returncode == 0, proc.stderr
    data = lock_json(root)
    validate(data, "lock", source="lock")
    names = {p["name"]: p for p in data["packages"]}
    assert set(names) == {"tinyml", "tinyconfig"}
    assert names["tinyml"]["version"] == "1.1.0"  # the newest the index has
    assert names["tinyconfig"]["version"] == "1.2.0"
    files = local_index.projects()
    for pkg in data["packages"]:
        served = {f.sha256 for f in files[pkg["name"]] if f.version == pkg["version"]}
        assert pkg["artifact"]["sha256"] in served
        assert f"sha256:{pkg['artifact']['sha256']}" in pkg["hashes"]
        assert pkg["artifact"]["url"].startswith(local_index.files_url)
        assert pkg["artifact"]["size"] > 0
    assert names["tinyml"]["direct"] is True
    assert names["tinyml"]["requestedBy"] == ["-r requirements.in"]
    assert names["tinyconfig"]["direct"] is False
    assert names["tinyconfig"]["requestedBy"] == ["tinyml"]
    assert names["tinyml"]["modules"] == ["tinyml"]
    assert data["resolver"]["name"] == resolver
    assert data["target"]["python"] == {"implementation": "cpython", "version": "3.11.2",
                                        "abi": "cp311"}
    assert data["target"]["libc"] == {"family": "glibc", "version": "2.36"}
    assert data["base"]["python"]["path"] == "/usr/bin/python3.11"
    assert data["base"]["manifestDigest"] == data["base"]["digest"]


def test_lock_file_format_is_stable(make_project: Callable[..., Path]) -> None:
    root = make_project()
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    text = (root / "reprolock.lock.json").read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert [p["name"] for p in data["packages"]] == sorted(p["name"] for p in data["packages"])
    before = (root / "reprolock.lock.json").read_bytes()
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    assert (root / "reprolock.lock.json").read_bytes() == before  # relock: same bytes


def test_check_detects_changed_requirement(make_project: Callable[..., Path]) -> None:
    root = make_project()
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    fresh = run_cli("lock", "--check", "-C", root)
    assert fresh.returncode == 0, fresh.stderr
    assert "fresh" in fresh.stdout
    (root / "requirements.in").write_text("tinyml\ntoolz-lite\n")
    stale = run_cli("lock", "--check", "-C", root)
    assert stale.returncode == 1
    assert "requirements.in changed" in stale.stderr
    as_json = run_cli("lock", "--check", "--json", "-C", root)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "fresh": False, "lock": str(root / "reprolock.lock.json"),
        "changes": ["file requirements.in changed"]}


def test_check_ignores_comments_and_layout_of_the_config(make_project: Callable[..., Path]) -> None:
    root = make_project()
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    config = root / "reprolock.toml"
    config.write_text("# a comment\n\n" + config.read_text().replace(" = ", "="))
    assert run_cli("lock", "--check", "-C", root).returncode == 0
    config.write_text(config.read_text().replace('resolver="uv"', 'resolver="pip-tools"'))
    stale = run_cli("lock", "--check", "-C", root)
    assert stale.returncode == 1
    assert "resolver changed: 'uv' → 'pip-tools'" in stale.stderr


def test_check_follows_included_requirement_files(make_project: Callable[..., Path]) -> None:
    root = make_project(requirements="-r base.in\n")
    (root / "base.in").write_text("tinyml\n")
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    assert [f["path"] for f in lock_json(root)["inputs"]["files"]] == ["base.in",
                                                                        "requirements.in"]
    (root / "base.in").write_text("tinyml\ntoolz-lite\n")
    stale = run_cli("lock", "--check", "-C", root)
    assert stale.returncode == 1 and "base.in changed" in stale.stderr


def test_check_without_lock_is_an_error(make_project: Callable[..., Path]) -> None:
    proc = run_cli("lock", "--check", "-C", make_project())
    assert proc.returncode == 2
    assert "no lock file" in proc.stderr and "reprolock lock" in proc.stderr
    assert_no_traceback(proc)


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON (line 1"),
    ('{"lockVersion": 1}', "is not valid"),
    ('{"lockVersion": 7, "generator": {"version": "9.0"}}', "lockVersion 7"),
    ("[]", "not a JSON object"),
])
def test_hand_edited_lock_is_rejected(make_project: Callable[..., Path], content: str,
                                      message: str) -> None:
    root = make_project()
    (root / "reprolock.lock.json").write_text(content)
    proc = run_cli("lock", "--check", "-C", root)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert_no_traceback(proc)


def test_check_fast_path_and_cli_path_agree(make_project: Callable[..., Path]) -> None:
    root = make_project()
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    (root / "requirements.in").write_text("tinyml>=1.0\n")
    fast = run_cli("lock", "--check", "-C", root)
    # -v is not a fast-path form, so this goes through typer
    slow = run_cli("-v", "lock", "--check", "-C", root)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout,
                                                           slow.stderr)


def test_failed_lock_keeps_previous_lock(make_project: Callable[..., Path]) -> None:
    root = make_project()
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    before = (root / "reprolock.lock.json").read_bytes()
    (root / "requirements.in").write_text("tinyml\nconflict-a\n")
    proc = run_cli("lock", "--no-sbom", "-C", root)
    assert proc.returncode == 2
    assert "no set of versions" in proc.stderr
    assert "tinyconfig" in proc.stderr  # the resolver's own explanation is shown
    assert_no_traceback(proc)
    assert (root / "reprolock.lock.json").read_bytes() == before
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_package_without_wheel_for_target_is_named(make_project: Callable[..., Path],
                                                   resolver: str) -> None:
    proc = run_cli("lock", "-C", make_project(requirements="sdistonly\n", resolver=resolver))
    assert proc.returncode == 2
    assert "sdistonly" in proc.stderr
    assert "wheel" in proc.stderr
    assert_no_traceback(proc)


def test_wheel_chosen_for_the_target_libc(make_project: Callable[..., Path]) -> None:
    root = make_project(requirements="nativepkg\n")
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    pkg = lock_json(root)["packages"][0]
    assert "manylinux" in pkg["artifact"]["filename"]
    assert len(pkg["hashes"]) == 2  # both files of the release are recorded
    musl = make_project(requirements="nativepkg\n", base_tag="musl", name="musl")
    proc = run_cli("lock", "--no-sbom", "-C", musl)
    assert proc.returncode == 0, proc.stderr
    assert "musllinux" in lock_json(musl)["packages"][0]["artifact"]["filename"]


def test_pip_tools_refuses_a_target_it_cannot_resolve_for(
        make_project: Callable[..., Path]) -> None:
    root = make_project(resolver="pip-tools", base_tag="py312")
    proc = run_cli("lock", "--no-sbom", "-C", root)
    assert proc.returncode == 2
    assert "Python 3.11 here, 3.12 in the target" in proc.stderr
    assert 'resolver = "uv"' in proc.stderr
    uv = make_project(resolver="uv", base_tag="py312", name="uvproj")
    proc = run_cli("lock", "--no-sbom", "-C", uv)
    assert proc.returncode == 0, proc.stderr
    assert lock_json(uv)["target"]["python"]["abi"] == "cp312"


def test_unreachable_index_is_named_without_credentials(
        make_project: Callable[..., Path]) -> None:
    from tests.support.services import free_port

    url = f"http://user:s3cret@127.0.0.1:{free_port()}/simple"
    proc = run_cli("lock", "--no-sbom", "-C", make_project(index_url=url))
    assert proc.returncode == 2
    assert "s3cret" not in proc.stderr + proc.stdout
    assert "127.0.0.1" in proc.stderr
    assert_no_traceback(proc)


def test_credentials_never_reach_the_lock(tmp_path: Path, wheelhouse: Path,
                                          make_project: Callable[..., Path]) -> None:
    with LocalIndex(tmp_path / "private", auth=("alice", "t0ken")) as index:
        for dist in sorted(wheelhouse.iterdir()):
            index.add(dist)
        url = index.url.replace("http://", "http://alice:${INDEX_TOKEN}@")
        root = make_project(index_url=url)
        env = {**os.environ, "INDEX_TOKEN": "t0ken"}
        proc = run_cli("lock", "--no-sbom", "-C", root, env=env)
        assert proc.returncode == 0, proc.stderr
        text = (root / "reprolock.lock.json").read_text()
        assert "t0ken" not in text and "alice" not in text
        assert "t0ken" not in proc.stdout + proc.stderr
        assert lock_json(root)["indexes"] == [{"kind": "index", "url": index.url}]
        env["INDEX_TOKEN"] = "wrong"
        denied = run_cli("lock", "--no-sbom", "-C", root, env=env)
        assert denied.returncode == 2
        assert "wrong" not in denied.stderr


def test_upgrade_keeps_pins_unless_asked(make_project: Callable[..., Path],
                                         local_index: LocalIndex, tmp_path: Path) -> None:
    root = make_project(requirements="tinyml\n")
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    old = {p["name"]: p["version"] for p in lock_json(root)["packages"]}
    newer = build_wheel(tmp_path / "newer", "tinyconfig", "1.3.0")
    local_index.add(newer)
    try:
        assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
        assert {p["name"]: p["version"] for p in lock_json(root)["packages"]} == old
        proc = run_cli("lock", "--no-sbom", "-C", root, "--upgrade-package", "tinyconfig")
        assert proc.returncode == 0, proc.stderr
        assert "tinyconfig 1.2.0 → 1.3.0" in proc.stdout
        assert lock_json(root)["packages"][0]["version"] == "1.3.0"
    finally:
        local_index.remove(newer.name)


def test_lock_json_output(make_project: Callable[..., Path]) -> None:
    root = make_project()
    (root / "train.py").write_text("import tinyml\nimport yaml\n")
    proc = run_cli("lock", "--no-sbom", "--json", "-C", root)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["packages"] == 2
    assert report["inputsDigest"] == lock_json(root)["inputsDigest"]
    assert any("'yaml' is imported but no locked package provides it" in w
               for w in report["warnings"])


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_exported_requirements_install_with_require_hashes(
        make_project: Callable[..., Path], local_index: LocalIndex, tmp_path: Path,
        resolver: str) -> None:
    root = make_project(resolver=resolver)
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    out = tmp_path / "requirements.txt"
    proc = run_cli("export", "-C", root, "--format", "requirements", "-o", out)
    assert proc.returncode == 0, proc.stderr
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--require-hashes", "--no-deps",
         "--target", str(target), "-r", str(out)],
        capture_output=True, text=True, check=False)
    assert pip.returncode == 0, pip.stderr
    assert f"--index-url {local_index.url}" in out.read_text()
    assert (target / "tinyml" / "__init__.py").is_file()
    assert (target / "tinyconfig" / "__init__.py").is_file()


def test_exported_pylock_installs_with_uv(make_project: Callable[..., Path],
                                          tmp_path: Path) -> None:
    import tomllib

    from reprolock.resolver.uv import uv_binary

    root = make_project()
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    out = tmp_path / "pylock.toml"
    assert run_cli("export", "-C", root, "-f", "pylock", "-o", out).returncode == 0
    doc = tomllib.loads(out.read_text())
    assert doc["lock-version"] == "1.0"
    assert {p["name"] for p in doc["packages"]} == {"tinyml", "tinyconfig"}
    venv = tmp_path / "venv"
    subprocess.run([uv_binary(), "venv", "--python", sys.executable, str(venv)], check=True,
                   capture_output=True)
    proc = subprocess.run([uv_binary(), "pip", "install", "--python", str(venv / "bin/python"),
                           "-r", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    check = subprocess.run([str(venv / "bin/python"), "-c", "import tinyml, tinyconfig"],
                           check=False)
    assert check.returncode == 0


def test_find_links_artifacts_are_recorded_relative(tmp_path: Path, tiny_base: Path) -> None:
    root = tmp_path / "proj"
    shutil.copytree(Path(__file__).parent.parent / "fixtures" / "example", root,
                    ignore=shutil.ignore_patterns(".reprolock", "reprolock.lock.json"))
    config = root / "reprolock.toml"
    config.write_text(config.read_text().replace("oci-layout:.reprolock/base:bookworm",
                                                 f"oci-layout:{tiny_base}:tiny"))
    proc = run_cli("lock", "--no-sbom", "-C", root)
    assert proc.returncode == 0, proc.stderr
    data = lock_json(root)
    assert {p["artifact"]["path"] for p in data["packages"]} == {
        "wheels/tinyconfig-1.0.0-py3-none-any.whl", "wheels/tinyml-1.0.0-py3-none-any.whl"}
    assert data["indexes"] == [{"kind": "find-links", "url": "wheels"}]
    lock = read_lock(root / "reprolock.lock.json")
    assert lock.package("tinyml") is not None


def _with_extras(root: Path, extras: str, dependencies: str) -> str:
    """Give the project a pyproject.toml with these optional dependencies, and add
    ``dependencies`` to its config's [dependencies]; the config as it was."""
    (root / "pyproject.toml").write_text(
        '[project]\nname = "trainer"\nversion = "1"\ndependencies = []\n'
        f"[project.optional-dependencies]\n{extras}")
    config = (root / "reprolock.toml").read_text()
    (root / "reprolock.toml").write_text(config.replace("[dependencies]\n",
                                                        f"[dependencies]\n{dependencies}"))
    return config


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_pyproject_extras_are_locked_and_stale_the_lock(make_project: Callable[..., Path],
                                                        resolver: str) -> None:
    """dependencies.extras locks [project.optional-dependencies] as pip install '.[x]'
    would install them (an extra naming the project itself included); editing an extra
    stales the lock."""
    root = make_project(resolver=resolver, requirements="")
    _with_extras(root, 'ml = ["tinyml==1.0.0"]\nall = ["trainer[ml]"]\n',
                 'pyproject = true\nextras = ["all"]\n')
    proc = run_cli("lock", "--no-build", "-C", root)
    assert proc.returncode == 0, proc.stderr
    names = {p["name"]: p for p in lock_json(root)["packages"]}
    assert names["tinyml"]["version"] == "1.0.0"
    assert names["tinyml"]["requestedBy"] == ["-r pyproject.toml"]
    pyproject = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(pyproject.replace("tinyml==1.0.0", "tinyml"))
    stale = run_cli("lock", "--check", "-C", root)
    assert stale.returncode == 1 and "pyproject.toml" in stale.stdout + stale.stderr


def test_an_import_an_unlocked_extra_provides_names_the_extra(
        make_project: Callable[..., Path]) -> None:
    """litgpt: 18 warnings said "add its distribution to your requirements" where
    pyproject.toml's extra already named it; the warning now names the extra to lock."""
    root = make_project(requirements="tinyconfig\n")
    config = _with_extras(root, 'ML = ["tinyml>=1"]\n', "pyproject = true\n")
    proc = run_cli("lock", "--no-build", "-C", root)
    assert proc.returncode == 0, proc.stderr
    assert ("train.py:1: module 'tinyml' is imported but no locked package provides it; "
            "tinyml is in pyproject.toml's extra 'ml': add 'ml' to dependencies.extras\n"
            in proc.stderr)
    (root / "reprolock.toml").write_text(config)  # requirements.in only
    proc = run_cli("lock", "--no-build", "-C", root)
    assert proc.returncode == 0, proc.stderr
    assert ("add 'ml' to dependencies.extras (with dependencies.pyproject = true)\n"
            in proc.stderr)
