"""The build cache hashes a blob once and stamps it; any change to the file is hashed
again. A layout a user hands in is hashed on every read, stamps or not."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from reprolock.imagebuild.store import open_cache
from reprolock.oci.blobstore import BlobStore
from reprolock.output.layout_writer import copy_blob

DATA = b"layer bytes " * 1000


class Hashes:
    """Counts whole-file hashes made by the blob store."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = hashlib.file_digest

        def counting(handle: object, digest: str) -> object:
            self.count += 1
            return real(handle, digest)  # type: ignore[arg-type]

        monkeypatch.setattr("reprolock.oci.blobstore.hashlib.file_digest", counting)


def test_a_stamped_blob_is_not_hashed_again(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_cache(tmp_path)
    digest = store.put_bytes(DATA)
    hashes = Hashes(monkeypatch)
    assert store.valid(digest) and store.valid(digest) and open_cache(tmp_path).valid(digest)
    assert hashes.count == 1


def test_a_blob_rewritten_in_place_with_its_mtime_restored_is_refused(
        tmp_path: Path) -> None:
    store = open_cache(tmp_path)
    digest = store.put_bytes(DATA)
    assert store.valid(digest)
    path = store.path(digest)
    before = path.stat()
    with open(path, "r+b") as handle:  # same inode, same size, other bytes
        handle.write(b"X")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert not store.valid(digest)
    assert not path.exists(), "a blob that does not hash to its name is removed"


def test_a_new_hard_link_costs_one_hash_then_the_stamp_holds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_cache(tmp_path / "cache")
    digest = store.put_bytes(DATA)
    assert store.valid(digest)
    hashes = Hashes(monkeypatch)
    assert copy_blob(store, digest, tmp_path / "out")  # a link changes the inode's ctime
    assert store.valid(digest) and store.valid(digest)
    assert hashes.count == 1


def test_a_store_without_stamps_hashes_every_read(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(tmp_path)
    digest = store.put_bytes(DATA)
    hashes = Hashes(monkeypatch)
    assert store.valid(digest) and store.valid(digest)
    assert hashes.count == 2
    assert not (tmp_path / "blob-stamps").exists()


def test_a_forged_stamp_for_other_bytes_does_not_vouch(tmp_path: Path) -> None:
    store = open_cache(tmp_path)
    digest = store.put_bytes(DATA)
    path = store.path(digest)
    path.write_bytes(b"other bytes " * 1000)  # written before any stamp exists
    assert not store.valid(digest)


def test_a_layout_file_of_the_right_size_but_wrong_bytes_is_replaced(tmp_path: Path) -> None:
    store = open_cache(tmp_path / "cache")
    digest = store.put_bytes(DATA)
    dest = tmp_path / "out" / "blobs" / "sha256" / digest.removeprefix("sha256:")
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"Y" * len(DATA))
    assert copy_blob(store, digest, tmp_path / "out")
    assert dest.read_bytes() == DATA
    assert not copy_blob(store, digest, tmp_path / "out"), "the same file: nothing to do"
