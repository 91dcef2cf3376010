"""Layers from a directory tree, for base images made here (fixtures, tests).

A thin wrapper over :mod:`reprolock.oci.tarball`, which holds the one tar writer and its
rules (sorted entries with parents first, one integer mtime, uid/gid 0 and empty names,
modes 0755/0644, hard links as regular files). The gzip stream here is Python's
``gzip`` module with no name and no time, as these base layers have always been written:
changing it would change every base image's blob digests.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from reprolock._internal.files import atomic_writer
from reprolock.oci.compress import Sink
from reprolock.oci.tarball import (
    DEFAULT_MTIME,
    Entry,
    HashingWriter,
    LayerBlob,
    entries_from_dir,
)
from reprolock.oci.tarball import write_tar as write_entries

__all__ = ["DEFAULT_MTIME", "LayerBlob", "write_layer", "write_tar"]


def write_tar(root: Path, out: Sink, *, prefix: str = "", mtime: int = DEFAULT_MTIME) -> None:
    """Every file, directory and symlink under ``root``, named ``prefix/relative``; the
    directories of ``prefix`` are entries too."""
    parts = [p for p in prefix.split("/") if p]
    dirs = [Entry("/".join(parts[: i + 1]), "dir") for i in range(len(parts))]
    write_entries([*dirs, *entries_from_dir(root, "/".join(parts))], out, mtime=mtime)


def write_layer(root: Path, dest: Path, *, prefix: str = "", mtime: int = DEFAULT_MTIME,
                level: int = 6) -> LayerBlob:
    """Write ``root`` as a gzip layer to ``dest`` (atomically)."""
    if not root.is_dir():  # os.walk would quietly give an empty layer
        raise NotADirectoryError(f"layer root {root} is not a directory")
    with atomic_writer(dest) as handle:
        blob = HashingWriter(handle)
        with gzip.GzipFile(filename="", mode="wb", fileobj=blob,
                           compresslevel=level, mtime=0) as gz:
            tar = HashingWriter(gz)
            write_tar(root, tar, prefix=prefix, mtime=mtime)
    return LayerBlob("sha256:" + blob.sha.hexdigest(), "sha256:" + tar.sha.hexdigest(),
                     blob.size, "application/vnd.oci.image.layer.v1.tar+gzip")
