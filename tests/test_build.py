"""`reprolock build`: the same lock and code give the same image, bit for bit, whatever
the machine's state; caches are keyed by inputs and checked when read."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support.buildproject import TRAIN, build_json, cli, copy_project

# The environment image of the golden project below. It must change only on purpose:
# if a change to reprolock moves it, explain why in the commit and update it here.
GOLDEN_ENV_CONFIG = "sha256:69d31911e3d4ec91895b89ab938acb597a3cbaed93d8193e87090d40629e14ed"


def test_build_twice_same_digest(build_project_template: Path, tmp_path: Path) -> None:
    first = build_json(build_project_template, tmp_path / "c1")
    second = build_json(build_project_template, tmp_path / "c1")  # warm cache
    third = build_json(build_project_template, tmp_path / "c2")  # cold cache
    assert first["manifestDigest"] == second["manifestDigest"] == third["manifestDigest"]
    assert first["environment"]["matchesLock"] is True


VARIATIONS: dict[str, dict[str, object]] = {
    "umask 077": {"umask": 0o077},
    "umask 022": {"umask": 0o022},
    "TZ and LANG": {"env": {"TZ": "Asia/Kathmandu", "LANG": "tr_TR.UTF-8", "LC_ALL": "C"}},
    "PYTHONHASHSEED": {"env": {"PYTHONHASHSEED": "12345"}},
    "another cwd": {"cwd": Path("/")},
}


@pytest.mark.parametrize("name", sorted(VARIATIONS))
def test_variations_do_not_change_the_digest(build_project_template: Path, tmp_path: Path,
                                             name: str) -> None:
    reference = build_json(build_project_template, tmp_path / "ref")
    project = copy_project(build_project_template, tmp_path / "elsewhere" / "p",
                           reverse=True)
    for path in project.rglob("*"):  # touch every source file
        os.utime(path, (1_700_000_000, 1_700_000_000))
    varied = build_json(project, tmp_path / "other-cache", **VARIATIONS[name])  # type: ignore[arg-type]
    assert varied["manifestDigest"] == reference["manifestDigest"]
    assert varied["configDigest"] == reference["configDigest"]


def test_source_date_epoch_changes_only_times(build_project_template: Path,
                                             tmp_path: Path) -> None:
    base = build_json(build_project_template, tmp_path / "c")
    other = build_json(build_project_template, tmp_path / "c",
                       env={"SOURCE_DATE_EPOCH": "1600000000"})
    assert other["manifestDigest"] != base["manifestDigest"]
    assert other["environment"]["matchesLock"] is False  # the lock records the default time
    layout = build_project_template / "out"
    config = json.loads(blob(layout, other["configDigest"]))
    assert config["created"] == "2020-09-13T12:26:40Z"


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_code_only_change_rebuilds_only_the_code_layer(build_project_template: Path,
                                                        tmp_path: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    cache = tmp_path / "cache"
    before = build_json(project, cache)
    (project / "train.py").write_text(TRAIN + "# tweak\n")
    proc = cli("build", "-C", project, "--json", "-o", f"oci:{project}/out", cache=cache)
    assert proc.returncode == 0, proc.stderr
    after = json.loads(proc.stdout)
    assert "building 1 of" in proc.stderr  # only the code layer was built
    assert after["environment"] == before["environment"]
    assert [x["digest"] for x in after["layers"][:-1]] == [x["digest"] for x in
                                                          before["layers"][:-1]]
    assert after["layers"][-1]["digest"] != before["layers"][-1]["digest"]
    assert after["codeTree"] != before["codeTree"]


def test_second_build_downloads_nothing(build_project_template: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    build_json(build_project_template, cache)
    shutil.rmtree(build_project_template / "out")
    wheels = build_project_template / "wheels"
    hidden = build_project_template.parent / "wheels-hidden"
    wheels.rename(hidden)  # the artifacts are now only in the cache
    try:
        again = build_json(build_project_template, cache)
    finally:
        hidden.rename(wheels)
    assert again["environment"]["matchesLock"] is True


def test_corrupt_cache_entries_are_rebuilt_not_used(build_project_template: Path,
                                                    tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = build_json(build_project_template, cache)
    for path in (cache / "blobs" / "sha256").iterdir():
        if path.stat().st_size > 1000:
            path.write_bytes(path.read_bytes()[:-10])  # truncate: a partial write
    for path in (cache / "artifacts").rglob("*.whl"):
        path.write_bytes(b"garbage")
    again = build_json(build_project_template, cache)
    assert again["manifestDigest"] == good["manifestDigest"]


def test_layers_follow_the_package_plan(build_project_template: Path, tmp_path: Path) -> None:
    result = build_json(build_project_template, tmp_path / "c")
    holds = [x["holds"] for x in result["layers"]]
    assert holds[0] == "base image layer"
    assert holds[1] == "virtual environment"
    assert holds[2] == "bigdata 1.0.0"  # big enough for its own layer
    assert holds[3] == "tinyconfig 1.2.0, tinyml 1.1.0"  # small ones share
    assert holds[4].startswith("code sha256:")


def test_image_config_and_labels(build_project_template: Path, tmp_path: Path) -> None:
    result = build_json(build_project_template, tmp_path / "c")
    layout = build_project_template / "out"
    config = json.loads(blob(layout, result["configDigest"]))
    lock = json.loads((build_project_template / "reprolock.lock.json").read_text())
    run = config["config"]
    assert run["Entrypoint"] == ["python", "train.py"]
    assert run["WorkingDir"] == "/app"
    env = dict(item.split("=", 1) for item in run["Env"])
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["SEED"] == "7" and env["PYTHONHASHSEED"] == "0"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    labels = run["Labels"]
    assert labels["org.opencontainers.image.base.digest"] == lock["base"]["digest"]
    assert labels["dev.reprolock.code.tree"] == result["codeTree"]
    lock_sha = hashlib.sha256((build_project_template / "reprolock.lock.json").read_bytes())
    assert labels["dev.reprolock.lock.digest"] == f"sha256:{lock_sha.hexdigest()}"
    assert labels["dev.reprolock.environment.config"] == lock["image"]["configDigest"]
    assert config["created"] == "1980-01-01T00:00:00Z"
    assert {h["created"] for h in config["history"]} == {"1980-01-01T00:00:00Z"}
    from reprolock import __version__

    assert not any(f"reprolock {__version__}" in h.get("created_by", "")
                   for h in config["history"])  # no tool version: it would move the digest
    assert lock["image"]["configDigest"] == result["environment"]["configDigest"]


@pytest.mark.parametrize("compression", ["zstd", "none", "gzip:1"])
def test_compression_changes_blobs_not_identity(build_project_template: Path, tmp_path: Path,
                                                compression: str) -> None:
    gzip = build_json(build_project_template, tmp_path / "c")
    other = build_json(build_project_template, tmp_path / "c", "--compression", compression)
    assert other["configDigest"] == gzip["configDigest"]  # diff_ids do not depend on it
    assert other["manifestDigest"] != gzip["manifestDigest"]
    assert [x["diffId"] for x in other["layers"]] == [x["diffId"] for x in gzip["layers"]]


def test_build_uses_the_compressor_the_lock_records(build_project_template: Path,
                                                    tmp_path: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    locked = cli("lock", "-C", project, "--compression", "zstd", "--no-sbom", "-q",
                 cache=tmp_path / "c")
    assert locked.returncode == 0, locked.stderr
    lock = json.loads((project / "reprolock.lock.json").read_text())
    assert lock["image"]["compression"]["name"] == "zstd"
    result = build_json(project, tmp_path / "c")
    assert result["environment"]["manifestDigest"] == lock["image"]["manifestDigest"]
    assert result["environment"]["matchesLock"] is True
    assert {x["holds"] for x in result["layers"]} and all(
        x["mediaType"].endswith("+zstd") for x in lock["image"]["layers"][-2:])
    explicit = build_json(project, tmp_path / "c", "--compression", "gzip")
    assert explicit["environment"]["manifestDigest"] != lock["image"]["manifestDigest"]
    assert explicit["environment"]["configDigest"] == lock["image"]["configDigest"]


def test_golden_environment_image(build_project_template: Path, tmp_path: Path) -> None:
    result = build_json(build_project_template, tmp_path / "c")
    assert result["environment"]["configDigest"] == GOLDEN_ENV_CONFIG


def test_stale_lock_refuses_to_build(build_project_template: Path, tmp_path: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    (project / "requirements.in").write_text("tinyml\n")
    proc = cli("build", "-C", project, cache=tmp_path / "c")
    assert proc.returncode == 2
    assert "stale" in proc.stderr and "requirements.in changed" in proc.stderr
    assert not (project / ".reprolock" / "image").exists()


def test_tampered_wheel_is_refused(build_project_template: Path, tmp_path: Path,
                                   ) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    wheel = project / "wheels" / "tinyml-1.1.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    proc = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=tmp_path / "c")
    assert proc.returncode == 2
    assert "tinyml-1.1.0-py3-none-any.whl does not match the lock" in proc.stderr
    assert "expected sha256" in proc.stderr
    assert not (project / "out").exists()


def test_swapped_base_is_refused(build_project_template: Path, tmp_path: Path) -> None:
    from tests.support.images import make_base

    project = copy_project(build_project_template, tmp_path / "p")
    shutil.rmtree(project / "base")
    make_base(project / "base", tmp_path / "rootfs", tag="tiny")  # same tag, other bytes
    proc = cli("build", "-C", project, cache=tmp_path / "c")
    assert proc.returncode == 2
    assert "but the lock records" in proc.stderr


def _evil_wheel(dest: Path, name: str, entries: dict[str, bytes]) -> Path:
    import base64
    import zipfile

    path = dest / f"{name}-1.0-py3-none-any.whl"
    dist = f"{name}-1.0.dist-info"
    files = {**entries, f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\n"
             f"Version: 1.0\n".encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
        f"{len(d)}\n" for n, d in files.items()) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for n, d in files.items():
            archive.writestr(n, d)
        archive.writestr(f"{dist}/RECORD", record)
    return path


@pytest.mark.parametrize(("entries", "message"), [
    ({"../../etc/evil.py": b"x"}, "escapes its root"),
    ({"/etc/evil.py": b"x"}, "escapes its root"),
    # installer looped for ever on the "." (memory grew 14 MB/s)
    ({"./evil-1.0.data/purelib/x.py": b"x"}, "escapes its root or names a path twice"),
    ({"evil//x.py": b"x"}, "names a path twice"),
    ({"evil-1.0.data/purelib/torch-9.9.9.dist-info/METADATA": b"Name: torch\n"},
     r"metadata of another distribution \(torch-9\.9\.9\.dist-info\)"),
    ({"other-2.0.dist-info/METADATA": b"Name: other\n"}, "2 .dist-info directories"),
])
def test_wheels_with_crafted_member_names_are_refused(
        tmp_path: Path, entries: dict[str, bytes], message: str) -> None:
    from reprolock.errors import ArtifactError
    from reprolock.imagebuild.install import VenvLayout, plan_wheel

    wheel = _evil_wheel(tmp_path, "evil", entries)
    layout = VenvLayout("/opt/venv", "3.11", "3.11.2", "/usr/bin/python3.11")
    with pytest.raises(ArtifactError, match=message):
        plan_wheel(wheel, layout, filename=wheel.name)


def test_a_wheel_member_not_in_deflate_is_refused(tmp_path: Path) -> None:
    """A 3,850-byte bzip2 member inflated 4 GiB in one call (8.4 GB of memory)."""
    import zipfile

    from reprolock.errors import ArtifactError
    from reprolock.imagebuild.install import VenvLayout, plan_wheel

    wheel = _evil_wheel(tmp_path, "evil", {})
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("evil/__init__.py", b"x = 1\n", compress_type=zipfile.ZIP_BZIP2)
    layout = VenvLayout("/opt/venv", "3.11", "3.11.2", "/usr/bin/python3.11")
    with pytest.raises(ArtifactError, match="zip method 12; wheels use deflate"):
        plan_wheel(wheel, layout, filename=wheel.name)


def test_oversized_metadata_and_python_scripts_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A RECORD of 512 MiB took 4.7 GB, a #!python script of 2 GiB took 6.4 GB: both are
    read whole."""
    from reprolock.errors import ArtifactError
    from reprolock.imagebuild import wheelcheck
    from reprolock.imagebuild.install import VenvLayout, plan_wheel

    monkeypatch.setattr(wheelcheck, "MAX_PYTHON_SCRIPT", 1000)
    monkeypatch.setattr(wheelcheck, "MAX_METADATA", 1000)
    layout = VenvLayout("/opt/venv", "3.11", "3.11.2", "/usr/bin/python3.11")
    for sub in "abc":
        (tmp_path / sub).mkdir()
    script = _evil_wheel(tmp_path / "a", "evil", {"evil-1.0.data/scripts/run":
                                                  b"#!python\n" + b"#" * 2000})
    with pytest.raises(ArtifactError, match=r"scripts/run is 2009 bytes, more than the 1000"):
        plan_wheel(script, layout, filename=script.name)
    binary = _evil_wheel(tmp_path / "b", "evil", {"evil-1.0.data/scripts/tool": b"\x7fELF" * 500})
    assert plan_wheel(binary, layout, filename=binary.name).entries  # not rewritten: streamed
    metadata = _evil_wheel(tmp_path / "c", "evil", {"evil-1.0.dist-info/LICENSE": b"x" * 2000})
    with pytest.raises(ArtifactError, match=r"LICENSE is 2000 bytes, more than the 1000"):
        plan_wheel(metadata, layout, filename=metadata.name)


def test_a_python_script_is_checked_against_record(tmp_path: Path) -> None:
    """installer rewrites a #!python script in memory: it never streamed past the RECORD
    check, and a script with another hash went into the image."""
    import zipfile

    from reprolock.errors import ArtifactError
    from reprolock.imagebuild.install import VenvLayout, plan_wheel

    good = _evil_wheel(tmp_path, "liar", {"liar-1.0.data/scripts/run": b"#!python\nprint(1)\n"})
    bad = tmp_path / "bad" / good.name
    bad.parent.mkdir()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"#!python\nprint(2)\n" if info.filename.endswith("/run")
                         else data)
    layout = VenvLayout("/opt/venv", "3.11", "3.11.2", "/usr/bin/python3.11")
    assert plan_wheel(good, layout, filename=good.name).entries
    with pytest.raises(ArtifactError, match="scripts/run does not match its RECORD hash"):
        plan_wheel(bad, layout, filename=bad.name)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_wheel_with_a_file_twice_is_refused(tmp_path: Path) -> None:
    import zipfile

    from reprolock.errors import ArtifactError
    from reprolock.imagebuild.install import VenvLayout, plan_wheel

    wheel = _evil_wheel(tmp_path, "liar", {"liar/__init__.py": b"x = 1\n"})
    with zipfile.ZipFile(wheel, "a") as archive:  # a second copy of the module, other bytes
        archive.writestr("liar/__init__.py", b"x = 2\n")
    layout = VenvLayout("/opt/venv", "3.11", "3.11.2", "/usr/bin/python3.11")
    with pytest.raises(ArtifactError, match=r"cannot install .*liar/__init__\.py"):
        plan_wheel(wheel, layout, filename=wheel.name)


def test_wheel_whose_file_does_not_match_record_stops_the_layer(tmp_path: Path) -> None:
    """The hash is checked while the bytes stream into the layer: no layer file is left."""
    import zipfile

    from reprolock.errors import ArtifactError
    from reprolock.imagebuild.install import VenvLayout, plan_wheel
    from reprolock.oci.compress import Compressor
    from reprolock.oci.tarball import write_layer

    good = _evil_wheel(tmp_path, "liar", {"liar/__init__.py": b"x = 1\n"})
    bad = tmp_path / "bad" / good.name
    bad.parent.mkdir()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():  # same RECORD, one module with other bytes
            data = b"x = 666\n" if info.filename == "liar/__init__.py" else src.read(info)
            dst.writestr(info.filename, data)
    layout = VenvLayout("/opt/venv", "3.11", "3.11.2", "/usr/bin/python3.11")
    dest = tmp_path / "layer.tar"
    ok = write_layer(plan_wheel(good, layout, filename=good.name).entries, dest,
                     compressor=Compressor("none", 0))
    assert ok.size == dest.stat().st_size
    dest.unlink()
    planned = plan_wheel(bad, layout, filename=bad.name).entries
    with pytest.raises(ArtifactError, match=r"liar/__init__\.py does not match its RECORD hash"):
        write_layer(planned, dest, compressor=Compressor("none", 0))
    assert not dest.exists()
    assert list(tmp_path.glob(".layer.tar*")) == []


def test_a_wheel_found_to_match_its_record_is_not_hashed_member_by_member_again(
        build_project_template: Path, tmp_path: Path) -> None:
    """A layer written notes, beside each wheel of the store, that every member matched
    RECORD; a cold build from that store (no layer cached) streams those members
    without a digest to check, and gives the same image."""
    from reprolock.imagebuild.install import VenvLayout, plan_wheel

    cache = tmp_path / "cache"
    first = build_json(build_project_template, cache)
    wheels = sorted((cache / "artifacts" / "sha256").glob("*/*.whl"))
    notes = sorted((cache / "artifacts" / "sha256").glob("*/*.whl.record-checked-1"))
    assert wheels and [n.with_name(n.name.removesuffix(".record-checked-1")) for n in notes] \
        == wheels
    layout = VenvLayout("/opt/venv", "3.11", "3.11.2", "/usr/bin/python3.11")
    members = [e.member for e in plan_wheel(wheels[0], layout, filename=wheels[0].name,
                                            record_checked=True).entries if e.member]
    assert members and all(m.sha256 is None for m in members)
    for path in cache.iterdir():  # cold: only the wheel store, with its notes
        if path.name != "artifacts":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(build_project_template / "out")
    again = build_json(build_project_template, cache)
    assert again["manifestDigest"] == first["manifestDigest"]


def test_the_record_note_is_for_one_wheel_file(tmp_path: Path) -> None:
    """The note belongs to a file name and sha256 (the bytes the lock pins); names are
    checked before they become paths."""
    from reprolock.errors import ArtifactError
    from reprolock.imagebuild.artifacts import ArtifactStore
    from reprolock.lock.model import Artifact

    store = ArtifactStore(tmp_path / "cache", project=tmp_path)
    artifact = Artifact(filename="liar-1.0-py3-none-any.whl", sha256="a" * 64, size=1)
    assert not store.record_checked(artifact)
    store.note_record_checked(artifact)
    assert store.record_checked(artifact)
    assert not store.record_checked(Artifact(filename=artifact.filename, sha256="b" * 64,
                                             size=1))
    assert not store.record_checked(Artifact(filename="liar-2.0-py3-none-any.whl",
                                             sha256="a" * 64, size=1))
    with pytest.raises(ArtifactError):
        store.record_checked(Artifact(filename="../x.whl", sha256="a" * 64, size=1))


def test_streamed_layer_matches_installer_on_disk(tmp_path: Path, wheelhouse: Path) -> None:
    """The planned entries hold exactly what installer writes to a directory."""
    import io
    import tarfile

    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    from reprolock.imagebuild.install import INSTALLER_NAME, VenvLayout, plan_wheel
    from reprolock.oci.tarball import write_tar

    layout = VenvLayout("/opt/venv", "3.11", "3.11.2", "/usr/bin/python3.11")
    for wheel in sorted(wheelhouse.glob("*.whl")):
        root = tmp_path / wheel.name
        with WheelFile.open(wheel) as source:
            install(source, SchemeDictionaryDestination(
                layout.scheme(source.distribution), interpreter="/opt/venv/bin/python",
                script_kind="posix", destdir=str(root)), {"INSTALLER": INSTALLER_NAME})
        on_disk = {p.relative_to(root).as_posix(): p.read_bytes()
                   for p in root.rglob("*") if p.is_file()}
        buffer = io.BytesIO()
        write_tar(plan_wheel(wheel, layout, filename=wheel.name).entries, buffer)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            streamed = {m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                        for m in tar.getmembers() if m.isfile()}
        assert streamed == on_disk, wheel.name


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside.txt"])
def test_code_symlink_out_of_the_project_is_refused(build_project_template: Path,
                                                    tmp_path: Path, target: str) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    (project / "data" / "link").symlink_to(target)
    proc = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=tmp_path / "c")
    assert proc.returncode == 2
    assert "data/link is a symbolic link" in proc.stderr
    assert not (project / "out").exists()


def test_code_symlink_inside_the_project_is_kept(build_project_template: Path,
                                                 tmp_path: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    (project / "data" / "current.csv").symlink_to("labels.csv")
    result = build_json(project, tmp_path / "c")
    assert result["environment"]["matchesLock"] is True


def test_full_disk_is_a_clear_error_and_leaves_nothing(build_project_template: Path,
                                                       tmp_path: Path, tiny_disk: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    proc = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=tiny_disk)
    assert proc.returncode == 2
    assert "No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr
    leftovers = [p for p in tiny_disk.rglob("*") if p.is_file() and
                 (p.name.startswith(".") or "reprolock-layer-" in str(p))]
    assert leftovers == []
    assert not (project / "out").exists()


def test_an_install_error_names_its_reason_without_an_address() -> None:
    """installer's message held "<installer.sources.WheelFile object at 0x7f…>" (another
    on every run), and an entry point it could not parse gave no reason at all."""
    from reprolock.imagebuild.install import _reason

    assert _reason(ValueError("bad <installer.sources.WheelFile object at 0x7f3a2b>")) == \
        "ValueError: bad <installer.sources.WheelFile>"
    assert _reason(KeyError()) == "KeyError"
