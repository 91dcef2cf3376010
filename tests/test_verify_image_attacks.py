"""``reprolock verify --image`` against forged images: every blob is hashed against its
descriptor, every layer against its diff_id, the environment layers against the lock and
the code layer's files against the checkout; digests never become paths unchecked, and
malformed image documents end in exit 2, never a traceback."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reprolock.oci.compress import Compressor
from reprolock.oci.media import REF_NAME
from reprolock.oci.tarball import Entry, write_layer
from tests.support.buildproject import cli, copy_project

BASE_LAYER = "base image layer"
# 64 characters after "sha256:" that climb out of blobs/sha256/ to the layout's parent
TRAVERSAL = "./" * 25 + "../../../o.tar"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("attacks-cache")


@pytest.fixture(scope="module")
def built(build_project_template: Path, tmp_path_factory: pytest.TempPathFactory,
          cache: Path) -> tuple[Path, Path]:
    """The project, its image (oci layout, tag v1), and one more image (tag v2) built
    from the same lock with another train.py: a second, real code layer."""
    root = tmp_path_factory.mktemp("attacks")
    project = copy_project(build_project_template, root / "p")
    out = root / "out"
    assert cli("build", "-C", project, "-q", "-o", f"oci:{out}:v1",
               cache=cache).returncode == 0
    other = copy_project(build_project_template, root / "q")
    (other / "train.py").write_text("print('not the reviewed code')\n")
    proc = cli("build", "-C", other, "-q", "-o", f"oci:{out}:v2", cache=cache)
    assert proc.returncode == 0, proc.stderr
    return project, out


@pytest.fixture
def case(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy (real copies, not links into the build cache) to tamper with."""
    project = copy_project(built[0], tmp_path / "p")
    out = tmp_path / "out"
    shutil.copytree(built[1], out)
    return project, out


def blob(out: Path, digest: str) -> Path:
    return out / "blobs" / "sha256" / digest.removeprefix("sha256:")


def put(out: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blob(out, digest).write_bytes(data)
    return digest, len(data)


def load(out: Path, tag: str = "v1") -> tuple[dict[str, Any], dict[str, Any]]:
    index = json.loads((out / "index.json").read_text())
    desc = next(m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag)
    manifest = json.loads(blob(out, desc["digest"]).read_bytes())
    return manifest, json.loads(blob(out, manifest["config"]["digest"]).read_bytes())


def save(out: Path, manifest: Any, config: Any = None, tag: str = "v1", *,
         raw_manifest: bytes | None = None) -> None:
    """Write config and manifest blobs and point ``tag`` at the manifest: a forgery
    whose documents are all consistent with each other."""
    if config is not None and isinstance(manifest.get("config"), dict):
        digest, size = put(out, _canonical(config))
        manifest["config"] = {**manifest["config"], "digest": digest, "size": size}
    digest, size = put(out, raw_manifest if raw_manifest is not None else _canonical(manifest))
    index = json.loads((out / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get(REF_NAME) == tag:
            entry.update(digest=digest, size=size)
    (out / "index.json").write_text(json.dumps(index))


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def verify(project: Path, cache: Path, *args: str | Path) -> tuple[int, dict[str, Any], str]:
    proc = cli("verify", "-C", project, "--json", *args, cache=cache)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def failed(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"] if not c["ok"]}


def text(check: dict[str, Any]) -> str:
    return " ".join([check["detail"], *check.get("differences", [])])


def dependency_index(project: Path) -> int:
    """The manifest position of the biggest dependency layer (bigdata's)."""
    lock = json.loads((project / "reprolock.lock.json").read_text())
    layers = lock["image"]["layers"]
    deps = [i for i, x in enumerate(layers) if x["holds"] != BASE_LAYER]
    return max(deps, key=lambda i: layers[i]["size"])


def evil_layer(tmp: Path) -> tuple[Path, str, str, int]:
    """A real gzip layer that plants a .pth file in the virtual environment."""
    dest = tmp / "evil.tar.gz"
    layer = write_layer([Entry("opt/venv/lib/python3.11/site-packages/evil.pth", "file",
                               data=b"import os; os.system('id')\n")], dest,
                        compressor=Compressor("gzip", 5))
    return dest, layer.digest, layer.diff_id, layer.size


def test_untampered_image_passes(case: tuple[Path, Path], cache: Path) -> None:
    project, out = case
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1")
    assert code == 0, report
    assert {"base", "dependencies", "config", "code", "layers"} <= {
        c["name"] for c in report["checks"]}


def test_layer_edited_in_place_is_named(case: tuple[Path, Path], cache: Path) -> None:
    project, out = case
    manifest, _ = load(out)
    digest = manifest["layers"][dependency_index(project)]["digest"]
    path = blob(out, digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1")
    assert code == 1
    assert digest in text(failed(report)["layers"]), report


def test_layer_replaced_under_its_old_name(case: tuple[Path, Path], cache: Path,
                                           tmp_path: Path) -> None:
    project, out = case
    manifest, _ = load(out)
    digest = manifest["layers"][dependency_index(project)]["digest"]
    shutil.copyfile(evil_layer(tmp_path)[0], blob(out, digest))
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1")
    assert code == 1
    assert digest in text(failed(report)["layers"]), report


def test_bogus_diff_id_is_found(case: tuple[Path, Path], cache: Path) -> None:
    """The code layer's diff_id is not part of the locked environment config: only
    decompressing the layer shows it is wrong (docker load refuses such an image)."""
    project, out = case
    manifest, config = load(out)
    config["rootfs"]["diff_ids"][-1] = "sha256:" + "0" * 64
    save(out, manifest, config)
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1")
    assert code == 1
    problem = text(failed(report)["layers"])
    assert "diff_id" in problem and "sha256:" + "0" * 64 in problem, report


def _swap_code_layer(out: Path) -> str:
    """Put v2's code layer into v1, with labels, history, config and manifest fixed up
    so that every document agrees; return the tree the swapped-in layer holds."""
    manifest, config = load(out)
    other_manifest, other_config = load(out, "v2")
    manifest["layers"][-1] = other_manifest["layers"][-1]
    config["rootfs"]["diff_ids"][-1] = other_config["rootfs"]["diff_ids"][-1]
    save(out, manifest, config)  # the label still names the checkout's tree
    return str(other_config["config"]["Labels"]["dev.reprolock.code.tree"])


def test_swapped_code_layer_fails_without_key(case: tuple[Path, Path], cache: Path) -> None:
    project, out = case
    swapped = _swap_code_layer(out)
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1")
    assert code == 1
    assert swapped in text(failed(report)["code"]), report


def test_swapped_code_layer_with_allowed_drift_says_so(case: tuple[Path, Path],
                                                        cache: Path) -> None:
    project, out = case
    swapped = _swap_code_layer(out)
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1", "--allow-code-drift")
    assert code == 0, report
    check = next(c for c in report["checks"] if c["name"] == "code")
    assert swapped[:19] in check["detail"] and "--allow-code-drift" in check["detail"]


def test_code_layer_writing_outside_the_code_fails(case: tuple[Path, Path], cache: Path,
                                                   tmp_path: Path) -> None:
    """A code layer that also drops a file into site-packages is not a code layer."""
    project, out = case
    manifest, config = load(out)
    code_layer = blob(out, manifest["layers"][-1]["digest"])
    import gzip
    import io
    import tarfile

    tar_bytes = io.BytesIO(gzip.decompress(code_layer.read_bytes()))
    combined = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes) as old, tarfile.open(fileobj=combined, mode="w") as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("opt/venv/lib/python3.11/site-packages/evil.pth")
        payload = b"import os\n"
        info.size = len(payload)
        new.addfile(info, io.BytesIO(payload))
    tar = combined.getvalue()
    compressed = gzip.compress(tar)
    digest, size = put(out, compressed)
    manifest["layers"][-1] = {**manifest["layers"][-1], "digest": digest, "size": size}
    config["rootfs"]["diff_ids"][-1] = "sha256:" + hashlib.sha256(tar).hexdigest()
    save(out, manifest, config)
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1", "--allow-code-drift")
    assert code == 1
    assert "evil.pth" in text(failed(report)["code"]), report


def test_swapped_dependency_layer_is_named(case: tuple[Path, Path], cache: Path,
                                           tmp_path: Path) -> None:
    """The manifest names the new blob (so every blob matches its descriptor) and the
    config still lists the locked diff_ids (so the environment config is the lock's)."""
    project, out = case
    index = dependency_index(project)
    path, digest, _, size = evil_layer(tmp_path)
    shutil.copyfile(path, blob(out, digest))
    manifest, _ = load(out)
    manifest["layers"][index] = {**manifest["layers"][index], "digest": digest, "size": size}
    save(out, manifest)
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1")
    assert code == 1
    problems = failed(report)
    assert f"layer {index + 1}" in text(problems["dependencies"]), report
    assert digest[:19] in text(problems["dependencies"])
    assert "diff_id" in text(problems["layers"])


def test_swapped_dependency_layer_with_its_diff_id(case: tuple[Path, Path], cache: Path,
                                                   tmp_path: Path) -> None:
    project, out = case
    index = dependency_index(project)
    path, digest, diff_id, size = evil_layer(tmp_path)
    shutil.copyfile(path, blob(out, digest))
    manifest, config = load(out)
    manifest["layers"][index] = {**manifest["layers"][index], "digest": digest, "size": size}
    config["rootfs"]["diff_ids"][index] = diff_id
    save(out, manifest, config)
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1")
    assert code == 1
    assert f"layer {index + 1}" in text(failed(report)["dependencies"]), report
    assert "layers" not in failed(report)  # the forgery is consistent: only the lock tells


# -- digests that would become paths -----------------------------------------------------

def test_traversal_digest_in_a_base_layout_is_refused(build_project_template: Path,
                                                      tmp_path: Path, cache: Path) -> None:
    """The layer of the base lives outside the layout, named by ``sha256:./../../o.tar``:
    before, the probe read it from there and the lock succeeded."""
    project = copy_project(build_project_template, tmp_path / "w" / "p")
    layout = project / "base"
    manifest, _ = load(layout, "tiny")
    real = blob(layout, manifest["layers"][0]["digest"])
    shutil.move(real, layout.parent / "o.tar")
    manifest["layers"][0]["digest"] = "sha256:" + TRAVERSAL
    save(layout, manifest, tag="tiny")
    proc = cli("lock", "-C", project, "--no-build", "--no-sbom", cache=cache)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "sha256:" + TRAVERSAL in proc.stderr and "digest" in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


def test_traversal_digest_in_an_index_is_refused(case: tuple[Path, Path], cache: Path) -> None:
    project, out = case
    outside = out.parent / "o.tar"
    manifest, _ = load(out)
    outside.write_bytes(_canonical(manifest))
    index = json.loads((out / "index.json").read_text())
    for entry in index["manifests"]:
        entry["digest"] = "sha256:" + TRAVERSAL
    (out / "index.json").write_text(json.dumps(index))
    proc = cli("verify", "-C", project, "--image", f"oci:{out}:v1", cache=cache)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "digest" in proc.stderr and "hashes to" not in proc.stderr  # never read


# -- malformed documents -----------------------------------------------------------------

def _manifest(edit: Callable[[dict[str, Any], dict[str, Any]], Any]) -> Callable[[Path], None]:
    def apply(out: Path) -> None:
        manifest, config = load(out)
        result = edit(manifest, config)
        if isinstance(result, bytes):
            save(out, manifest, raw_manifest=result)
        else:
            save(out, manifest, config)
    return apply


def _index(doc: Any) -> Callable[[Path], None]:
    def apply(out: Path) -> None:
        (out / "index.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return apply


MALFORMED = {
    "manifest-is-a-list": _manifest(lambda m, c: b"[]"),
    "layers-not-a-list": _manifest(lambda m, c: m.update(layers={"a": 1})),
    "config-not-an-object": _manifest(lambda m, c: m.update(config="sha256:x")),
    "digest-not-a-string": _manifest(lambda m, c: m["layers"][0].update(digest=5)),
    "size-not-a-number": _manifest(lambda m, c: m["layers"][0].update(size="big")),
    "rootfs-a-list": _manifest(lambda m, c: c.update(rootfs=[])),
    "diff-ids-not-digests": _manifest(lambda m, c: c["rootfs"].update(diff_ids=[1, 2])),
    "run-config-a-list": _manifest(lambda m, c: c.update(config=["Env"])),
    "labels-a-list": _manifest(lambda m, c: c["config"].update(Labels=["a"])),
    "history-not-objects": _manifest(lambda m, c: c.update(history=["x"])),
    "duplicate-key-manifest": _manifest(
        lambda m, c: _canonical(m)[:-1] + b',"schemaVersion":2}'),
    "index-manifests-an-object": _index({"schemaVersion": 2, "manifests": {"a": 1}}),
    "index-entry-a-string": _index({"schemaVersion": 2, "manifests": ["sha256:x"]}),
    "index-duplicate-key": _index('{"manifests": [], "manifests": []}'),
}


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_malformed_image_exits_2(case: tuple[Path, Path], cache: Path, shape: str) -> None:
    project, out = case
    MALFORMED[shape](out)
    proc = cli("verify", "-C", project, "--image", f"oci:{out}:v1", cache=cache)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "\nerror: " in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


@pytest.mark.parametrize("shape", ["rootfs-a-list", "layers-not-a-list", "digest-not-a-string",
                                   "index-manifests-an-object", "duplicate-key-manifest"])
def test_malformed_base_exits_2(build_project_template: Path, tmp_path: Path, cache: Path,
                                shape: str) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    layout = project / "base"
    manifest, config = load(layout, "tiny")
    # the tiny base has one layer and no history: give the edits something to edit
    config.setdefault("config", {})
    save(layout, manifest, config, tag="tiny")
    _retag(layout, "tiny", "v1")
    MALFORMED[shape](layout)
    toml = project / "reprolock.toml"
    toml.write_text(toml.read_text().replace("oci-layout:base:tiny", "oci-layout:base:v1"))
    proc = cli("lock", "-C", project, "--no-build", "--no-sbom", cache=cache)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: " in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


def _retag(layout: Path, old: str, new: str) -> None:
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get(REF_NAME) == old:
            entry["annotations"][REF_NAME] = new
    (layout / "index.json").write_text(json.dumps(index))


# -- every image source hashes what it reads ---------------------------------------------

def _flip_in_archive(archive: Path, member_name: str) -> None:
    """Flip one byte in the middle of a member of an uncompressed tar, in place."""
    import tarfile

    with tarfile.open(archive) as tar:
        member = tar.getmember(member_name)
    with open(archive, "r+b") as handle:
        handle.seek(member.offset_data + member.size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0x01]))


def test_tampered_layer_in_an_oci_archive(case: tuple[Path, Path], cache: Path) -> None:
    """(skopeo would compress the uncompressed base layer on the way: another blob)"""
    import tarfile

    project, out = case
    archive = out.parent / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for path in sorted(out.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(out)), recursive=False)
    assert verify(project, cache, "--image", f"oci-archive:{archive}:v1")[0] == 0
    manifest, _ = load(out)
    digest = manifest["layers"][-1]["digest"]
    _flip_in_archive(archive, f"blobs/sha256/{digest.removeprefix('sha256:')}")
    code, report, _ = verify(project, cache, "--image", f"oci-archive:{archive}:v1")
    assert code == 1 and digest in text(failed(report)["layers"]), report


def test_tampered_layer_in_a_docker_archive(case: tuple[Path, Path], cache: Path) -> None:
    """docker save archives hold the layer tars themselves: named by their diff_id."""
    import tarfile

    from tests.support.services import skopeo_copy

    project, out = case
    archive = out.parent / "image.tar"
    skopeo_copy(f"oci:{out}:v1", f"docker-archive:{archive}:attack:v1")
    assert verify(project, cache, "--image", f"docker-archive:{archive}")[0] == 0
    with tarfile.open(archive) as tar:
        entry = json.loads(tar.extractfile("manifest.json").read())[0]  # type: ignore[union-attr]
    _flip_in_archive(archive, entry["Layers"][-1])
    code, report, _ = verify(project, cache, "--image", f"docker-archive:{archive}")
    assert code == 1 and "layer 5" in text(failed(report)["layers"]), report


@pytest.fixture(scope="module")
def own_registry(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A registry of this module's own, so that its blobs can be tampered with."""
    from tests.support.services import start_registry

    work = tmp_path_factory.mktemp("own-registry")
    for host in start_registry(work):
        yield host, work / "data"


def test_tampered_blob_in_a_registry(case: tuple[Path, Path], cache: Path,
                                     own_registry: tuple[str, Path]) -> None:
    project, out = case
    host, storage = own_registry
    ref = f"{host}/attack:v1"
    assert cli("build", "-C", project, "-q", "-o", f"registry:{ref}",
               cache=cache).returncode == 0
    assert verify(project, cache, "--image", f"registry:{ref}")[0] == 0
    manifest, _ = load(out)
    digest = manifest["layers"][dependency_index(project)]["digest"]
    hexpart = digest.removeprefix("sha256:")
    data = storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0x01
    data.write_bytes(bytes(content))
    code, report, _ = verify(project, cache, "--image", f"registry:{ref}")
    assert code == 1 and digest in text(failed(report)["layers"]), report


def test_image_in_the_docker_engine_is_hashed(case: tuple[Path, Path], cache: Path,
                                             tmp_path: Path) -> None:
    """The engine's image is read through 'docker save': each layer tar is hashed against
    its diff_id (the engine keeps no compressed blobs: their uncompressed form is
    accepted for the lock's), and the code layer's files against the checkout."""
    from tests.support.services import docker_available, require

    require(docker_available(), "no Docker Engine")
    project, _ = case
    name = f"reprolock-attacks:{tmp_path.name.lower()[-40:]}"
    built = cli("build", "-C", project, "-q", "-o", f"docker:{name}", cache=cache)
    assert built.returncode == 0, built.stderr
    try:
        code, report, _ = verify(project, cache, "--image", f"docker:{name}")
        assert code == 0, report
        assert "layers" in {c["name"] for c in report["checks"] if c["ok"]}
        (project / "train.py").write_text("print('edited')\n")
        code, report, _ = verify(project, cache, "--image", f"docker:{name}")
        assert code == 1 and "code tree" in text(failed(report)["code"])
    finally:
        import docker

        docker.from_env().images.remove(name, force=True)


# -- tar readers that disagree: Python's tarfile here, Go's archive/tar in Docker ---------

def _code_tar(out: Path) -> bytes:
    import gzip

    manifest, _ = load(out)
    return gzip.decompress(blob(out, manifest["layers"][-1]["digest"]).read_bytes())


def _replace_code_tar(out: Path, tar: bytes) -> None:
    """The code layer replaced by ``tar``, with blob, diff_id, config and manifest made
    consistent: a forgery every digest agrees with."""
    import gzip

    manifest, config = load(out)
    digest, size = put(out, gzip.compress(tar, mtime=0))
    manifest["layers"][-1] = {**manifest["layers"][-1], "digest": digest, "size": size}
    config["rootfs"]["diff_ids"][-1] = "sha256:" + hashlib.sha256(tar).hexdigest()
    save(out, manifest, config)


def _ustar_header(name: str, size_field: bytes, *, devmajor: bytes = b"0000000\0") -> bytes:
    head = bytearray(512)
    head[0:len(name)] = name.encode()
    head[100:108], head[108:116], head[116:124] = b"0000644\0", b"0000000\0", b"0000000\0"
    head[124:136], head[136:148] = size_field, b"00000000000\0"
    head[156] = ord("0")
    head[257:265] = b"ustar\x0000"
    head[329:337] = devmajor
    head[148:156] = b"        "
    head[148:156] = b"%06o\0 " % sum(head)
    return bytes(head)


def _entries_end(tar: bytes) -> int:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(tar)) as reader:
        last = reader.getmembers()[-1]
    return last.offset_data + (last.size + 511) // 512 * 512


EVIL_ENTRY = _ustar_header("etc/planted", b"%011o\0" % 2) + b"x\n" + b"\0" * 510


@pytest.mark.parametrize("drift", [False, True])
def test_a_nul_size_header_hiding_a_second_archive_is_refused(case: tuple[Path, Path],
                                                              cache: Path, drift: bool) -> None:
    """A first header whose size field starts with NUL: Python reads size 0 and then the
    real code layer; Go skips that as the entry's data and unpacks what follows."""
    project, out = case
    real = _code_tar(out)[:_entries_end(_code_tar(out))]
    hidden = len(real) + 512
    tar = (_ustar_header("app/zz-cover", b"\0" + b"%010o" % hidden + b"\0") + real
           + b"\0" * 512 + EVIL_ENTRY + b"\0" * 1024)
    _replace_code_tar(out, tar)
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1",
                             *(["--allow-code-drift"] if drift else []))
    assert code == 1, report
    assert "Docker's tar reader" in text(failed(report)["code"])


@pytest.mark.parametrize("drift", [False, True])
def test_an_unreadable_header_ending_pythons_archive_is_refused(case: tuple[Path, Path],
                                                                cache: Path, drift: bool) -> None:
    """A header whose devmajor Python finds invalid ends Python's stream quietly; Go reads
    the field as base-256 and unpacks the entry."""
    project, out = case
    real = _code_tar(out)[:_entries_end(_code_tar(out))]
    planted = _ustar_header("etc/planted", b"%011o\0" % 2, devmajor=b"\xa0" + b"\0" * 7)
    _replace_code_tar(out, real + planted + b"x\n" + b"\0" * 510 + b"\0" * 1024)
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1",
                             *(["--allow-code-drift"] if drift else []))
    assert code == 1, report
    assert "Docker's tar reader" in text(failed(report)["code"])


def test_a_code_layer_of_the_same_files_in_other_bytes_fails(case: tuple[Path, Path],
                                                             cache: Path) -> None:
    """Same files, other tar bytes (another mtime): whatever a tar reader makes of it, it
    is not the layer build writes for this checkout, which is what is compared."""
    import io
    import tarfile

    project, out = case
    rewritten = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(_code_tar(out))) as source, \
            tarfile.open(fileobj=rewritten, mode="w", format=tarfile.PAX_FORMAT) as new:
        for member in source.getmembers():
            member.mtime = 1234567890
            new.addfile(member, source.extractfile(member) if member.isfile() else None)
    _replace_code_tar(out, rewritten.getvalue())
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1")
    assert code == 1, report
    assert "bytes are not those" in text(failed(report)["code"])
    code, report, _ = verify(project, cache, "--image", f"oci:{out}:v1", "--allow-code-drift")
    assert code == 0, report  # the files are the checkout's: drift allowed, nothing planted


@pytest.mark.parametrize("trick", ["slash-name", "unreadable-header"])
def test_a_docker_archive_that_docker_load_reads_otherwise_is_refused(
        case: tuple[Path, Path], cache: Path, trick: str) -> None:
    """After the checked archive: a second manifest named /manifest.json (one file to
    docker load, the last one winning), or one behind a header Python's tarfile stops
    at. What is verified must be what is loaded: exit 2, nothing verified."""
    import io
    import tarfile

    from tests.support.services import skopeo_copy

    project, out = case
    archive = out.parent / "image.tar"
    skopeo_copy(f"oci:{out}:v1", f"docker-archive:{archive}:attack:v1")
    data = archive.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.getmembers()
        end = tar.offset  # where the end-of-archive blocks start
    evil = b'[{"Config": "elsewhere.json", "Layers": []}]'
    if trick == "slash-name":
        extra = io.BytesIO()
        with tarfile.open(fileobj=extra, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo("/manifest.json")
            info.size = len(evil)
            tar.addfile(info, io.BytesIO(evil))
        tail = extra.getvalue()
    else:
        tail = (_ustar_header("manifest.json", b"%011o\0" % len(evil),
                              devmajor=b"\xa0" + b"\0" * 7)
                + evil + b"\0" * (-len(evil) % 512) + b"\0" * 1024)
    archive.write_bytes(data[:end] + tail)
    proc = cli("verify", "-C", project, "--image", f"docker-archive:{archive}", cache=cache)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "docker load" in proc.stderr and "Traceback" not in proc.stderr
