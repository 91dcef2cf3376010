"""Issue 10: names that become paths, lines injected into exports, code symlinks that
leave the project, two wheels that install one path, and malformed locks for
``lock --check``. Each test is an attack; each must be refused with exit 2 and a
message naming the file, the field and the fix, never with a traceback."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gzip
import json
import random
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reprolock.errors import ArtifactError, LockFileError
from reprolock.imagebuild.artifacts import ArtifactStore
from reprolock.lock.export import to_pylock, to_requirements
from reprolock.lock.model import Lock
from reprolock.schemas import _stamp, load_schema, validate
from tests.support.buildproject import cli, copy_project
from tests.support.wheels import build_wheel

LOCK = "reprolock.lock.json"


def _lock(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project / LOCK).read_text())
    return data


def _write_lock(project: Path, data: dict[str, Any]) -> None:
    (project / LOCK).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _refused(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr.lower(), proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


# -- names that become paths ----------------------------------------------------------

def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set the value at a dotted path (list indexes as numbers) of the lock."""
    def apply(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return apply


def _add_record(name: str) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        data["image"]["records"][name] = "sha256:" + "0" * 64
    return apply


PATH_ATTACKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "filename ../": _set("packages.0.artifact.filename", "../../../../escaped.whl"),
    "filename with /": _set("packages.0.artifact.filename", "sub/escaped.whl"),
    "filename with \\": _set("packages.0.artifact.filename", "..\\escaped.whl"),
    "filename ..": _set("packages.0.artifact.filename", ".."),
    "filename not a wheel": _set("packages.0.artifact.filename", "bigdata-1.0.0.tar.gz"),
    "sha256 ../": _set("packages.0.artifact.sha256", "../../" + "a" * 58),
    # an absolute find-links path is stored as written (issue 11), but never with '..'
    "artifact path absolute ..": _set("packages.0.artifact.path",
                                      "/opt/wheels/../../etc/bigdata-1.0.0-py3-none-any.whl"),
    "artifact path absolute .": _set("packages.0.artifact.path",
                                     "/opt/./bigdata-1.0.0-py3-none-any.whl"),
    "artifact path absolute //": _set("packages.0.artifact.path",
                                      "//opt/bigdata-1.0.0-py3-none-any.whl"),
    "artifact path inner ..": _set("packages.0.artifact.path",
                                   "wheels/../../../bigdata-1.0.0-py3-none-any.whl"),
    "layer digest ../": _set("image.layers.0.digest", "sha256:./../../o.tar"),
    "layer diffId ../": _set("image.layers.0.diffId", "sha256:../" + "a" * 61),
    "base digest ../": _set("base.digest", "sha256:./../../o.tar"),
    "record name ../": _add_record("../../x"),
    "prefix ..": _set("image.prefix", "/opt/venv/../../etc"),
    "prefix relative": _set("image.prefix", "opt/venv"),
    "python path newline": _set("base.python.path", "/usr/bin/python3\nhome = /tmp"),
    "python version newline": _set("base.python.version",
                                   "3.11.2\ninclude-system-site-packages = true"),
    "sbom path ../": _set("sbom.path", "../../outside.json"),
    "name ../": _set("packages.0.name", "../x"),
    # Python's re lets '$' match before a final newline: the schema must not
    "sha256 trailing newline": _set("packages.0.artifact.sha256", "a" * 64 + "\n"),
    "digest trailing newline": _set("image.layers.0.digest", "sha256:" + "a" * 64 + "\n"),
    "hash trailing newline": _set("packages.0.hashes.0", "sha256:" + "a" * 64 + "\n"),
    "name trailing newline": _set("packages.0.name", "bigdata\n"),
    "filename trailing newline": _set("packages.0.artifact.filename",
                                      "bigdata-1.0.0-py3-none-any.whl\n"),
}
# what a schema cannot say: the path's last component is the file name
MODEL_ATTACKS = {**PATH_ATTACKS, "artifact path other file": _set(
    "packages.0.artifact.path", "wheels/other-1.0-py3-none-any.whl")}


@pytest.fixture
def locked_data(build_project_template: Path) -> dict[str, Any]:
    data = _lock(build_project_template)
    data.setdefault("sbom", {"path": "reprolock.sbom.spdx.json", "format": "spdx",
                             "sha256": "0" * 64, "tool": {"name": "syft", "version": "1"}})
    return data


@pytest.mark.parametrize("attack", sorted(PATH_ATTACKS))
def test_schema_refuses_names_that_become_paths(locked_data: dict[str, Any],
                                                attack: str) -> None:
    data = copy.deepcopy(locked_data)
    PATH_ATTACKS[attack](data)
    with pytest.raises(LockFileError, match="is not valid"):
        validate(data, "lock", source=LOCK, error=LockFileError)


@pytest.mark.parametrize("attack", sorted(MODEL_ATTACKS))
def test_model_refuses_names_that_become_paths(locked_data: dict[str, Any],
                                               attack: str) -> None:
    """Defence in depth: a cache stamp can skip the schema; the model checks again."""
    validate(locked_data, "lock", source=LOCK, error=LockFileError)  # the original is fine
    Lock.from_json(locked_data)
    data = copy.deepcopy(locked_data)
    MODEL_ATTACKS[attack](data)
    with pytest.raises(LockFileError) as info:
        Lock.from_json(data)
    assert info.value.hint


@pytest.mark.parametrize(("sha256", "filename"), [
    ("a" * 64, "../../../escaped.whl"),
    ("a" * 64, "/tmp/escaped.whl"),
    ("a" * 64, ".."),
    ("../../" + "a" * 58, "x-1.0-py3-none-any.whl"),
    ("A" * 64, "x-1.0-py3-none-any.whl"),
])
def test_artifact_store_refuses_names_that_leave_the_cache(tmp_path: Path, sha256: str,
                                                           filename: str) -> None:
    store = ArtifactStore(tmp_path / "cache", project=tmp_path)
    with pytest.raises(ArtifactError):
        store.path_for(sha256, filename)


def _stamp_as_valid(cache: Path, project: Path) -> None:
    """What someone who can write to the cache does: mark the hostile lock as checked."""
    stamp = _stamp(cache, "lock", _lock(project))
    assert stamp is not None
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()


@pytest.mark.parametrize("stamped", [False, True], ids=["schema", "stamp-skips-schema"])
def test_build_refuses_a_filename_that_leaves_the_cache(build_project_template: Path,
                                                        tmp_path: Path, stamped: bool) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    cache = tmp_path / "c"
    # a warm cache: the wheel's directory exists, so '..' from it resolves
    assert cli("build", "-C", project, "-q", cache=cache).returncode == 0
    data = _lock(project)
    data["packages"][0]["artifact"]["filename"] = "../../../../escaped.whl"
    (tmp_path / "escaped.whl").write_bytes(b"the victim's file")
    _write_lock(project, data)
    if stamped:
        _stamp_as_valid(cache, project)
    proc = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=cache)
    _refused(proc, "filename")
    assert (tmp_path / "escaped.whl").read_bytes() == b"the victim's file"
    assert [p.name for p in tmp_path.rglob("escaped.whl")] == ["escaped.whl"]
    assert not (project / "out").exists()


def test_build_refuses_a_layer_digest_that_is_a_path(build_project_template: Path,
                                                     tmp_path: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    data = _lock(project)
    data["image"]["layers"][1]["digest"] = "sha256:./../../o.tar"
    _write_lock(project, data)
    cache = tmp_path / "c"
    _stamp_as_valid(cache, project)
    proc = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=cache)
    _refused(proc, "image.layers[1].digest")


# -- lines injected into exports ------------------------------------------------------

INJECTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "index url newline": _set("indexes.0.url", "wheels\n--trusted-host evil.example"),
    "index url CR": _set("indexes.0.url", "wheels\r--extra-index-url http://evil.example"),
    "index url U+2028": _set("indexes.0.url", "wheels\u2028--extra-index-url http://e.example"),
    "index url NEL": _set("indexes.0.url", "wheels\x85--extra-index-url http://e.example"),
    "version newline": _set("packages.0.version", "1.0.0\nevil==6.6.6"),
    "version space": _set("packages.0.version", "1.0.0 --hash=sha256:" + "0" * 64),
}


@pytest.mark.parametrize("attack", sorted(INJECTIONS))
@pytest.mark.parametrize("fmt", ["requirements", "pylock"])
def test_export_refuses_injected_lines(build_project_template: Path, tmp_path: Path,
                                       attack: str, fmt: str) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    data = _lock(project)
    INJECTIONS[attack](data)
    _write_lock(project, data)
    proc = cli("export", "-C", project, "-f", fmt, cache=tmp_path / "c")
    _refused(proc, LOCK)
    assert "evil" not in proc.stdout and "e.example" not in proc.stdout


def _bad_lock(locked_data: dict[str, Any], attack: str) -> Lock:
    """A lock object holding the injected value, as if every check before export failed."""
    data = copy.deepcopy(locked_data)
    lock = Lock.from_json(data)
    INJECTIONS[attack](data)
    if attack.startswith("index"):
        return dataclasses.replace(lock, indexes=tuple(data["indexes"]))
    pkg = lock.packages[0]
    return dataclasses.replace(lock, packages=(
        dataclasses.replace(pkg, version=data["packages"][0]["version"]), *lock.packages[1:]))


@pytest.mark.parametrize("attack", sorted(INJECTIONS))
def test_exporter_refuses_even_a_lock_that_passed_validation(
        locked_data: dict[str, Any], tmp_path: Path, attack: str) -> None:
    lock = _bad_lock(locked_data, attack)
    for render in (to_requirements, to_pylock):
        with pytest.raises(LockFileError):
            render(lock, project=tmp_path, dest_dir=tmp_path)


def test_config_with_a_line_break_in_an_index_url_is_refused(build_project_template: Path,
                                                             tmp_path: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    config = (project / "reprolock.toml").read_text()
    (project / "reprolock.toml").write_text(config.replace(
        'find-links = ["wheels"]',
        'find-links = ["wheels"]\n'
        'extra-urls = ["http://127.0.0.1:9/simple\\n--trusted-host evil"]'))
    proc = cli("lock", "-C", project, "--no-build", "--no-sbom", cache=tmp_path / "c")
    _refused(proc, "reprolock.toml", "index.extra-urls[0]")


def test_requirement_input_with_a_control_character_in_its_name_is_refused(
        build_project_template: Path, tmp_path: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    (project / "more\x1b[2K.in").write_text("tinyml\n")
    (project / "requirements.in").write_text("-r more\x1b[2K.in\nbigdata\n")
    proc = cli("lock", "-C", project, "--no-build", "--no-sbom", cache=tmp_path / "c")
    _refused(proc, "requirement input")
    assert "bug in reprolock" not in proc.stderr


def test_pylock_export_is_escaped_toml(locked_data: dict[str, Any], tmp_path: Path) -> None:
    lock = Lock.from_json(locked_data)
    text = to_pylock(lock, project=tmp_path, dest_dir=tmp_path)
    doc = tomllib.loads(text)
    assert [p["name"] for p in doc["packages"]] == sorted(p.name for p in lock.packages)


# -- code symlinks that leave the project ---------------------------------------------

SECRET = b"outside-the-project-7f3a9c"


def _blobs_holding(cache: Path, needle: bytes) -> list[Path]:
    found = []
    for path in cache.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        with contextlib.suppress(OSError, EOFError):
            data = gzip.decompress(data)
        if needle in data:
            found.append(path)
    return found


@pytest.mark.parametrize(("links", "named"), [
    ({"q": ".", "link": "q/../secret.txt"}, "link"),
    ({"d/up": "..", "d/link": "up/../secret.txt"}, "d/link"),
    ({"data/abs": "/etc/passwd"}, "data/abs"),
    ({"loop": "."}, None),  # a link to the project root stays inside: kept
])
def test_code_symlink_chains_that_leave_the_project_are_refused(
        build_project_template: Path, tmp_path: Path, links: dict[str, str],
        named: str | None) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    for path, target in links.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).symlink_to(target)
    cache = tmp_path / "c"
    proc = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=cache)
    if named is None:
        assert proc.returncode == 0, proc.stderr
        return
    _refused(proc, named, "symbolic link")
    assert not (project / "out").exists()
    assert not _blobs_holding(cache, SECRET)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                        "HOME": str(root), "PATH": "/usr/bin:/bin"})


def test_tracked_file_behind_a_symlinked_directory_is_refused(build_project_template: Path,
                                                               tmp_path: Path) -> None:
    """git still lists ``inc/secret.txt`` after ``inc`` became a link out of the project:
    the file read would be the one outside."""
    if shutil.which("git") is None:
        pytest.fail("git is needed")
    project = copy_project(build_project_template, tmp_path / "p")
    (project / "inc").mkdir()
    (project / "inc" / "secret.txt").write_text("placeholder\n")
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "x")
    shutil.rmtree(project / "inc")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (project / "inc").symlink_to(outside)
    cache = tmp_path / "c"
    proc = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=cache)
    _refused(proc, "inc/secret.txt", "symbolic link")
    assert not (project / "out").exists()
    assert not _blobs_holding(cache, SECRET)


def test_audit_does_not_read_a_tracked_file_behind_a_symlinked_directory(
        build_project_template: Path, tmp_path: Path) -> None:
    """The audit reads the code set as the build would: a file reached through a linked
    directory is outside the project, so it is named (RL002), not read and judged."""
    if shutil.which("git") is None:
        pytest.fail("git is needed")
    project = copy_project(build_project_template, tmp_path / "p")
    (project / "inc").mkdir()
    (project / "inc" / "train2.py").write_text("print('placeholder')\n")
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "x")
    shutil.rmtree(project / "inc")
    outside = tmp_path / "outside"
    outside.mkdir()
    # outside code with a hazard the audit would report if it read the file
    (outside / "train2.py").write_text("import random\nrandom.seed(None)\nx = random.random()\n")
    (project / "inc").symlink_to(outside)
    proc = cli("audit", project, "-f", "json", "--fail-on", "info", cache=tmp_path / "c")
    assert proc.stdout, proc.stderr
    report = json.loads(proc.stdout)
    # RL601 (the git tree is dirty: inc/ changed) is true and beside the point
    mine = [f for f in report["findings"] if f["path"] == "inc/train2.py"
            and f["rule"] != "RL601"]
    assert [f["rule"] for f in mine] == ["RL002"], mine
    assert "symbolic link" in mine[0]["message"]


# -- two wheels that install one path -------------------------------------------------

def _noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _clashing_project(template: Path, dest: Path) -> Path:
    """Two wheels of more than 1 MiB each (a layer each) that both install shared/x.py."""
    project = copy_project(template, dest)
    for seed, name in enumerate(("clasha", "clashb")):
        build_wheel(project / "wheels", name, "1.0", extra_files={
            f"{name}/blob.bin": _noise(seed, 1_200_000),
            "shared/x.py": f"WHO = {name!r}\n".encode()})
    (project / "requirements.in").write_text("clasha\nclashb\n")
    return project


def test_lock_refuses_two_wheels_installing_one_path_in_two_layers(
        build_project_template: Path, tmp_path: Path) -> None:
    project = _clashing_project(build_project_template, tmp_path / "p")
    before = (project / LOCK).read_bytes()
    proc = cli("lock", "-C", project, "--no-sbom", cache=tmp_path / "c")
    _refused(proc, "clasha", "clashb", "shared/x.py")
    assert (project / LOCK).read_bytes() == before


def test_build_refuses_two_wheels_installing_one_path_in_two_layers(
        build_project_template: Path, tmp_path: Path) -> None:
    project = _clashing_project(build_project_template, tmp_path / "p")
    cache = tmp_path / "c"
    locked = cli("lock", "-C", project, "--no-build", "--no-sbom", cache=cache)
    assert locked.returncode == 0, locked.stderr
    proc = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=cache)
    _refused(proc, "clasha", "clashb", "shared/x.py")
    assert not (project / "out").exists()


@pytest.mark.parametrize(("extra", "path"), [
    # a script named python replaces the environment's interpreter link
    ({"clasha-1.0.data/scripts/python": b"#!/bin/sh\necho owned\n"}, "/opt/venv/bin/python"),
    # a file where the other wheel has a directory
    ({"shared": b"x = 1\n"}, "shared"),
])
def test_lock_refuses_a_wheel_overwriting_the_venv_or_a_directory(
        build_project_template: Path, tmp_path: Path, extra: dict[str, bytes],
        path: str) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    build_wheel(project / "wheels", "clasha", "1.0", extra_files=extra)
    build_wheel(project / "wheels", "clashb", "1.0",
                extra_files={"shared/x.py": b"WHO = 'b'\n"})
    (project / "requirements.in").write_text("clasha\nclashb\n")
    proc = cli("lock", "-C", project, "--no-sbom", cache=tmp_path / "c")
    _refused(proc, "clasha", path)


def test_build_refuses_a_clash_between_two_cached_layers(build_project_template: Path,
                                                        tmp_path: Path) -> None:
    """Each layer alone was built before (and cached): the clash is still seen."""
    cache = tmp_path / "c"
    project = _clashing_project(build_project_template, tmp_path / "p")
    for only in ("clasha", "clashb"):
        (project / "requirements.in").write_text(f"{only}\n")
        proc = cli("lock", "-C", project, "--no-sbom", cache=cache)
        assert proc.returncode == 0, proc.stderr
    (project / "requirements.in").write_text("clasha\nclashb\n")
    locked = cli("lock", "-C", project, "--no-build", "--no-sbom", cache=cache)
    assert locked.returncode == 0, locked.stderr
    proc = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=cache)
    _refused(proc, "clasha", "clashb", "shared/x.py")


# -- malformed locks for lock --check -------------------------------------------------

def _write(text: str | bytes) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
    return apply


def _huge(path: Path) -> None:
    with open(path, "wb") as out:
        out.write(b'{"a": "')
        chunk = b"x" * (1 << 20)
        for _ in range(100):
            out.write(chunk)
        out.write(b'"}')


CHECK_ATTACKS: dict[str, Callable[[Path], None]] = {
    "deep nesting": _write("[" * 100_000 + "]" * 100_000),
    "deep objects": _write('{"a":' * 5000 + "1" + "}" * 5000),
    "lockVersion 999, generator []": _write('{"lockVersion": 999, "generator": []}'),
    "lockVersion 999, generator str": _write('{"lockVersion": 999, "generator": "x"}'),
    "lockVersion 999, generator null": _write('{"lockVersion": 999, "generator": null}'),
    "lockVersion 1, generator []": _write('{"lockVersion": 1, "generator": []}'),
    "lockVersion string": _write('{"lockVersion": "999", "generator": {}}'),
    "a list": _write("[]"),
    "a string": _write('"lock"'),
    "not UTF-8": _write(b'{"lockVersion": "\xff\xfe"}'),
    "100 MB": _huge,
    "duplicate keys": _write('{"lockVersion": 1, "lockVersion": 999}'),
    "NaN": _write('{"lockVersion": NaN}'),
    "empty": _write(""),
}


@pytest.mark.parametrize("attack", sorted(CHECK_ATTACKS))
def test_lock_check_refuses_malformed_locks_in_one_paragraph(tmp_path: Path,
                                                             attack: str) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "reprolock.toml").write_text(
        'base = "oci-layout:base:tiny"\n[dependencies]\nrequirements = ["requirements.in"]\n')
    (project / "requirements.in").write_text("tinyml\n")
    CHECK_ATTACKS[attack](project / LOCK)
    proc = cli("lock", "--check", "-C", project, cache=tmp_path / "c")
    _refused(proc, LOCK)
    assert proc.stderr.startswith("error: "), proc.stderr
    assert "\n\n" not in proc.stderr.strip(), proc.stderr
    assert len(proc.stderr) < 4000, proc.stderr[:4000]
    assert proc.stdout == ""


def test_every_string_in_the_lock_schema_is_constrained() -> None:
    """No string field of the lock may take control characters (a new field must opt
    into a pattern, an enum or a const)."""
    schema = load_schema("lock")
    loose: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
            if is_string and not ({"pattern", "enum", "const", "$ref"} & set(node)):
                loose.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "#")
    assert loose == []


def test_build_refuses_a_base_layer_whose_tar_is_not_its_diff_id(
        build_project_template: Path, tmp_path: Path) -> None:
    """A lock whose base (named by the lock's digest, so the build takes it) carries a
    bogus diff_id, as a lock from before the probe checked diff_ids could: the image
    would be one 'docker load' refuses. The build checks every base layer's diff_id."""
    from reprolock.oci.model import LayerBlob
    from tests.support.oci_writer import write_image

    project = copy_project(build_project_template, tmp_path / "p")
    layout = project / "base"
    index = json.loads((layout / "index.json").read_text())
    entry = next(m for m in index["manifests"]
                 if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "tiny")
    blob = lambda digest: layout / "blobs" / "sha256" / digest.removeprefix("sha256:")  # noqa: E731
    manifest = json.loads(blob(entry["digest"]).read_bytes())
    config = json.loads(blob(manifest["config"]["digest"]).read_bytes())
    layers = [LayerBlob(x["digest"], "sha256:" + "1" * 64, x["size"], x["mediaType"])
              for x in manifest["layers"]]
    digest = write_image(layout, config=config, layers=layers, tag="bogus")
    index = json.loads((layout / "index.json").read_text())
    bogus = next(m for m in index["manifests"]
                 if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "bogus")
    index["manifests"] = [{**m, "digest": bogus["digest"], "size": bogus["size"]}
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                          == "tiny" else m for m in index["manifests"] if m is not bogus]
    (layout / "index.json").write_text(json.dumps(index))  # 'tiny' now names the forgery
    lock = json.loads((project / "reprolock.lock.json").read_text())
    lock["base"]["digest"] = lock["base"]["manifestDigest"] = digest
    (project / "reprolock.lock.json").write_text(json.dumps(lock, indent=2, sort_keys=True)
                                                 + "\n")
    for extra in (["--env-only"], []):  # the environment image alone, as 'lock' builds it
        proc = cli("build", "-C", project, "-o", f"oci:{project}/out", *extra,
                   cache=tmp_path / "c")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "diff_id" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not (project / "out").exists()


def test_a_file_where_the_same_wheel_or_the_venv_has_a_directory_is_refused() -> None:
    """Served with PEP 658 metadata, uv never opens the wheel: one holding evil/a and
    evil/a/b, or installing a file at site-packages through .data/data, was built."""
    from reprolock.errors import ArtifactError
    from reprolock.imagebuild.builder import _refuse_files_as_directories
    from reprolock.imagebuild.install import VenvLayout, venv_entries

    layout = VenvLayout("/opt/venv", "3.11", "3.11.2", "/usr/bin/python3.11")
    dirs = {e.name for e in venv_entries(layout) if e.kind == "dir"}
    site = "opt/venv/lib/python3.11/site-packages"
    assert site in dirs
    with pytest.raises(ArtifactError, match=r"evil-1\.0-py3-none-any\.whl installs "
                       rf"/{site}/evil/a as a file and as a directory"):
        _refuse_files_as_directories({f"{site}/evil/a": "evil-1.0-py3-none-any.whl",
                                      f"{site}/evil/a/b": "evil-1.0-py3-none-any.whl"}, dirs)
    with pytest.raises(ArtifactError, match=rf"the virtual environment and evil-1\.0.* /{site} "
                       r"\(as a directory, and as a file\)"):
        _refuse_files_as_directories({site: "evil-1.0-py3-none-any.whl"}, dirs)
    _refuse_files_as_directories({f"{site}/evil/a/b": "evil-1.0-py3-none-any.whl"}, dirs)
