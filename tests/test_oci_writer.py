"""The deterministic layer writer and the OCI layout writer.

Determinism is checked by comparing digests between variations of the same tree, never
against digests the writer itself produced earlier; the tar and gzip bytes are read with
tarfile and by hand; skopeo and umoci check that what is written is a valid image.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.oci_writer import (
    DEFAULT_MTIME,
    LayerBlob,
    add_layer_from_dir,
    write_image,
    write_layer,
)
from tests.support.services import require_tool, skopeo_copy

# (relative path, content); None content makes a directory. Created in this order.
TREE: list[tuple[str, bytes | None]] = [
    ("app", None),
    ("app/pkg", None),
    ("app/pkg/__init__.py", b""),
    ("app/pkg/model.py", b"import torch\n"),
    ("app/train.py", b"print('train')\n"),
    ("app/data-v1.csv", b"a,b\n1,2\n"),
    ("app/empty", None),
    ("etc", None),
    ("etc/config.toml", b"seed = 0\n"),
    ("usr", None),
    ("usr/bin", None),
    ("usr/bin/tool", b"#!/bin/sh\necho tool\n"),
]
EXECUTABLE = "usr/bin/tool"
SYMLINKS = {"usr/bin/tool2": "tool", "app/current": "pkg", "app/dangling": "../nowhere"}
HARDLINK = ("app/train-copy.py", "app/train.py")


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


def make_tree(root: Path, *, reverse: bool = False, mtime: float | None = None) -> Path:
    items = list(reversed(TREE)) if reverse else TREE
    for name, content in items:
        path = root / name
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    exe = root / EXECUTABLE
    exe.chmod(exe.stat().st_mode | 0o100)  # the owner's exec bit is enough
    links = sorted(SYMLINKS.items(), reverse=reverse)
    for name, target in links:
        (root / name).symlink_to(target)
    os.link(root / HARDLINK[1], root / HARDLINK[0])
    if mtime is not None:
        for path in [root, *root.rglob("*")]:
            os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def layer_of(root: Path, dest: Path, **kwargs: object) -> LayerBlob:
    return write_layer(root, dest, **kwargs)  # type: ignore[arg-type]


def tar_bytes(layer_file: Path) -> bytes:
    return gzip.decompress(layer_file.read_bytes())


def members(layer_file: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(layer_file, "r:gz") as tar:
        return tar.getmembers()


# -- the same tree gives the same bytes --------------------------------------------------

def test_same_tree_same_digest_across_variations(tmp_path: Path,
                                                 umask: Callable[[int], None]) -> None:
    out = tmp_path / "out"
    umask(0o022)
    base = layer_of(make_tree(tmp_path / "a"), out / "a.tar.gz")
    variants = {"mtimes": make_tree(tmp_path / "b", mtime=1_700_000_000.5)}
    umask(0o077)
    variants["umask 077"] = make_tree(tmp_path / "c")
    umask(0o022)
    variants["reverse creation order"] = make_tree(tmp_path / "d", reverse=True)
    variants["copy elsewhere"] = Path(shutil.copytree(tmp_path / "a", tmp_path / "x" / "y" / "a",
                                                      symlinks=True))
    os.utime(variants["copy elsewhere"] / "app/train.py", (1, 1))
    assert (tmp_path / "c/app/train.py").stat().st_mode & 0o077 == 0  # umask did apply
    for name, root in variants.items():
        layer = layer_of(root, out / f"{name}.tar.gz")
        assert (layer.digest, layer.diff_id) == (base.digest, base.diff_id), name
        assert (out / f"{name}.tar.gz").read_bytes() == (out / "a.tar.gz").read_bytes(), name


def test_content_changes_change_the_digest(tmp_path: Path) -> None:
    base = layer_of(make_tree(tmp_path / "a"), tmp_path / "a.tar.gz")
    changed = make_tree(tmp_path / "b")
    (changed / "etc/config.toml").write_bytes(b"seed = 1\n")
    renamed = make_tree(tmp_path / "c")
    (renamed / "etc/config.toml").rename(renamed / "etc/config.tomL")
    not_exec = make_tree(tmp_path / "d")
    (not_exec / EXECUTABLE).chmod(0o644)
    relinked = make_tree(tmp_path / "e")
    (relinked / "usr/bin/tool2").unlink()
    (relinked / "usr/bin/tool2").symlink_to("./tool")
    digests = {base.diff_id}
    for root in (changed, renamed, not_exec, relinked):
        digests.add(layer_of(root, tmp_path / f"{root.name}.tar.gz").diff_id)
    assert len(digests) == 5


def test_other_mtime_other_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "a")
    default = layer_of(root, tmp_path / "a.tar.gz")
    other = layer_of(root, tmp_path / "b.tar.gz", mtime=DEFAULT_MTIME + 1)
    assert default.diff_id != other.diff_id
    assert {m.mtime for m in members(tmp_path / "b.tar.gz")} == {DEFAULT_MTIME + 1}


# -- what the layer holds ----------------------------------------------------------------

def test_digests_describe_the_bytes(tmp_path: Path) -> None:
    dest = tmp_path / "layer.tar.gz"
    layer = layer_of(make_tree(tmp_path / "a"), dest)
    data = dest.read_bytes()
    assert layer.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert layer.size == len(data)
    assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
    assert layer.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert dest.stat().st_mode & 0o777 == 0o644


def test_entries_sorted_parents_first_normalized(tmp_path: Path) -> None:
    dest = tmp_path / "layer.tar.gz"
    layer_of(make_tree(tmp_path / "a"), dest)
    found = members(dest)
    names = [m.name for m in found]
    assert names == sorted(names, key=os.fsencode)
    expected = {n for n, _ in TREE} | set(SYMLINKS) | {HARDLINK[0]}
    assert set(names) == expected
    assert len(names) == len(set(names))
    for i, name in enumerate(names):
        parent = name.rpartition("/")[0]
        if parent:
            assert parent in names[:i], f"{name} comes before its parent"
        assert not name.startswith(("/", "./"))
    for m in found:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
        assert m.mtime == DEFAULT_MTIME
        assert m.pax_headers == {}
        assert m.devmajor == m.devminor == 0
    modes = {m.name: m.mode for m in found}
    assert modes["app"] == modes["app/empty"] == 0o755
    assert modes["app/train.py"] == modes["etc/config.toml"] == 0o644
    assert modes[EXECUTABLE] == 0o755


def test_symlinks_kept_and_hardlinks_become_files(tmp_path: Path) -> None:
    dest = tmp_path / "layer.tar.gz"
    layer_of(make_tree(tmp_path / "a"), dest)
    with tarfile.open(dest, "r:gz") as tar:
        by_name = {m.name: m for m in tar.getmembers()}
        for name, target in SYMLINKS.items():
            assert by_name[name].issym(), name
            assert by_name[name].linkname == target
        copy = by_name[HARDLINK[0]]
        assert copy.isreg() and not copy.islnk()
        handle = tar.extractfile(copy)
        assert handle is not None and handle.read() == b"print('train')\n"
        assert by_name["app/current"].issym()  # a symlink to a directory is not followed
        assert not any(n.startswith("app/current/") for n in by_name)


def test_no_pax_or_gnu_headers(tmp_path: Path) -> None:
    """Walk the raw 512-byte headers: only regular (0), symlink (2) and directory (5)."""
    dest = tmp_path / "layer.tar.gz"
    layer_of(make_tree(tmp_path / "a"), dest)
    raw = tar_bytes(dest)
    offset, flags = 0, []
    while offset + 512 <= len(raw) and raw[offset:offset + 512] != b"\0" * 512:
        header = raw[offset:offset + 512]
        flags.append(header[156:157])
        assert header[257:263] == b"ustar\x00"  # POSIX ustar magic
        size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
        offset += 512 + (size + 511) // 512 * 512
    assert set(flags) <= {b"0", b"2", b"5"}
    assert len(flags) == len(members(dest))
    assert len(raw) % 10240 == 0 and set(raw[offset:]) == {0}


def test_gzip_header_has_no_time_or_name(tmp_path: Path) -> None:
    dest = tmp_path / "layer.tar.gz"
    layer_of(make_tree(tmp_path / "a"), dest)
    head = dest.read_bytes()[:10]
    assert head[:3] == b"\x1f\x8b\x08"  # gzip, deflate
    assert head[3] == 0  # no FNAME, FCOMMENT, FEXTRA or FHCRC
    assert head[4:8] == b"\0\0\0\0"  # MTIME 0
    assert head[9] == 255  # OS "unknown": the same on every machine


def test_special_files_are_left_out(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "a")
    os.mkfifo(root / "app/pipe")
    with_fifo = layer_of(root, tmp_path / "fifo.tar.gz")
    (root / "app/pipe").unlink()
    without = layer_of(root, tmp_path / "plain.tar.gz")
    assert with_fifo.diff_id == without.diff_id


def test_non_ascii_and_long_names_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "a"
    long_dir = root / ("d" * 60) / ("e" * 60)
    long_dir.mkdir(parents=True)
    (long_dir / "file.txt").write_text("long")
    (root / "données.txt").write_text("é")
    dest = tmp_path / "layer.tar.gz"
    layer_of(root, dest)
    names = [m.name for m in members(dest)]
    assert f"{'d' * 60}/{'e' * 60}/file.txt" in names
    assert "données.txt" in names
    again = layer_of(Path(shutil.copytree(root, tmp_path / "b")), tmp_path / "b.tar.gz")
    assert again.diff_id == layer_of(root, tmp_path / "c.tar.gz").diff_id


def test_prefix_adds_parent_directories(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg/mod.py").write_text("x = 1\n")
    (root / "train.py").write_text("print()\n")
    dest = tmp_path / "layer.tar.gz"
    layer_of(root, dest, prefix="app/code/")
    found = members(dest)
    names = [m.name for m in found]
    assert names == ["app", "app/code", "app/code/pkg", "app/code/pkg/mod.py",
                     "app/code/train.py"]
    assert all(m.isdir() and m.mode == 0o755 for m in found[:3])
    no_slash = layer_of(root, tmp_path / "b.tar.gz", prefix="app/code")
    assert no_slash.diff_id == layer_of(root, tmp_path / "c.tar.gz", prefix="app/code/").diff_id


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="missing"):
        layer_of(tmp_path / "missing", tmp_path / "out.tar.gz")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reprolock.oci.tarball as layer_module

    dest = tmp_path / "out" / "layer.tar.gz"
    root = make_tree(tmp_path / "a")
    layer_of(root, dest)
    before = dest.read_bytes()
    (root / "etc/config.toml").write_text("changed\n")

    def failing_open(path: object, mode: str = "r") -> object:
        raise PermissionError(f"cannot read {path}")

    monkeypatch.setattr(layer_module, "open", failing_open, raising=False)
    with pytest.raises(PermissionError):
        layer_of(root, dest)
    assert dest.read_bytes() == before
    assert [p.name for p in dest.parent.iterdir()] == ["layer.tar.gz"]


# -- OCI layouts -------------------------------------------------------------------------

def _image(layout: Path, root: Path, tag: str) -> str:
    layer = add_layer_from_dir(layout, root)
    config = {"architecture": "amd64", "os": "linux", "created": "1980-01-01T00:00:00Z",
              "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/usr/bin/tool"]}}
    return write_image(layout, config=config, layers=[layer], tag=tag)


def test_layout_is_deterministic(tmp_path: Path) -> None:
    first = _image(tmp_path / "one", make_tree(tmp_path / "a"), "v1")
    second = _image(tmp_path / "two", make_tree(tmp_path / "b", reverse=True), "v1")
    assert first == second
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
    assert files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*"))
    for path in files:
        if (tmp_path / "one" / path).is_file():
            assert (tmp_path / "one" / path).read_bytes() == (tmp_path / "two" / path).read_bytes()
    for blob in (tmp_path / "one/blobs/sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert not [p for p in (tmp_path / "one").rglob(".*")]  # no temporary files left


def test_layout_tags(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    first = _image(layout, make_tree(tmp_path / "a"), "v1")
    other_root = make_tree(tmp_path / "b")
    (other_root / "etc/config.toml").write_text("seed = 2\n")
    second = _image(layout, other_root, "v2")
    assert first != second
    index = json.loads((layout / "index.json").read_text())
    tags = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
            for m in index["manifests"]}
    assert tags == {"v1": first, "v2": second}
    assert _image(layout, other_root, "v1") == second  # re-tagging replaces, never adds
    index = json.loads((layout / "index.json").read_text())
    assert len(index["manifests"]) == 2
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_layout_with_untagged_entries(tiny_base: Path, tmp_path: Path) -> None:
    """A layout another tool wrote may name images without a ref.name annotation."""
    layout = tmp_path / "layout"
    skopeo_copy(f"oci:{tiny_base}:tiny", f"oci:{layout}")
    untagged = json.loads((layout / "index.json").read_text())["manifests"]
    assert not untagged[0].get("annotations")
    digest = _image(layout, make_tree(tmp_path / "a"), "mine")
    kept = json.loads((layout / "index.json").read_text())["manifests"]
    assert {m["digest"] for m in kept} == {untagged[0]["digest"], digest}


def test_skopeo_reads_the_layout(tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    layout = tmp_path / "layout"
    digest = _image(layout, make_tree(tmp_path / "a"), "v1")
    proc = subprocess.run([skopeo, "inspect", f"oci:{layout}:v1"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["Digest"] == digest
    manifest = json.loads((layout / "blobs/sha256" / digest.split(":")[1]).read_text())
    assert info["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
    assert info["Env"] == ["PATH=/usr/bin"]


def test_umoci_unpacks_the_layout(tmp_path: Path) -> None:
    umoci = require_tool("umoci")
    layout = tmp_path / "layout"
    _image(layout, make_tree(tmp_path / "a"), "v1")
    bundle = tmp_path / "bundle"
    proc = subprocess.run([umoci, "unpack", "--rootless", "--image", f"{layout}:v1", str(bundle)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    rootfs = bundle / "rootfs"
    assert (rootfs / "app/train.py").read_bytes() == b"print('train')\n"
    assert (rootfs / HARDLINK[0]).read_bytes() == b"print('train')\n"
    assert os.access(rootfs / EXECUTABLE, os.X_OK)
    assert not os.access(rootfs / "app/train.py", os.X_OK)
    for name, target in SYMLINKS.items():
        assert os.readlink(rootfs / name) == target
    assert (rootfs / "app/empty").is_dir()
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["/usr/bin/tool"]
