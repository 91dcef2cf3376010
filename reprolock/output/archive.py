"""``oci-archive:FILE[:TAG]``: one tar that is an OCI layout and also loads with
``docker load`` on Docker 20.10 and newer (a root manifest.json beside index.json, as
Docker 25's own ``docker save`` writes)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from reprolock._internal.files import atomic_writer
from reprolock.oci.blobstore import BlobStore, disk_space
from reprolock.oci.canonical import canonical_json
from reprolock.oci.media import LAYOUT_FILE, OCI_INDEX, REF_NAME
from reprolock.oci.model import Image
from reprolock.oci.tarball import DEFAULT_MTIME
from reprolock.output.interface import Output, Progress, Written
from reprolock.output.layout_writer import image_blobs, index_entry
from reprolock.output.referrers import Referrer


def docker_name(tag: str, repository: str) -> str:
    return tag if ":" in tag else f"{repository}:{tag}"


def write_archive(out: IO[bytes], image: Image, blobs: BlobStore, *, tag: str,
                  repository: str, referrers: Sequence[Referrer] = ()) -> None:
    """Directory entries first (syft needs them), no './' prefixes, fixed times."""
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [index_entry(image, tag), *(r.descriptor() for r in referrers)]}
    index["manifests"][0]["annotations"] = {  # type: ignore[index]
        REF_NAME: tag, "io.containerd.image.name": docker_name(tag, repository)}
    docker_manifest = [{
        "Config": f"blobs/sha256/{image.config_digest.removeprefix('sha256:')}",
        "RepoTags": [docker_name(tag, repository)],
        "Layers": [f"blobs/sha256/{x.blob.digest.removeprefix('sha256:')}" for x in image.layers],
    }]
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in ("blobs", "blobs/sha256"):
            tar.addfile(_info(name, tarfile.DIRTYPE, 0))
        for digest in sorted({*image_blobs(image), *(b for r in referrers for b in r.blobs)}):
            path = blobs.path(digest)
            with open(path, "rb") as handle:
                tar.addfile(_info(f"blobs/sha256/{digest.removeprefix('sha256:')}",
                                  tarfile.REGTYPE, path.stat().st_size), handle)
        for name, data in (("index.json", canonical_json(index)),
                           ("manifest.json", canonical_json(docker_manifest)),
                           ("oci-layout", LAYOUT_FILE)):
            tar.addfile(_info(name, tarfile.REGTYPE, len(data)), io.BytesIO(data))


def _info(name: str, kind: bytes, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = DEFAULT_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class ArchiveOutput(Output):
    def __init__(self, path: Path, tag: str | None, repository: str = "reprolock/image") -> None:
        self.path = path
        self.tag = tag
        self.repository = repository

    def write(self, image: Image, blobs: BlobStore, *, tag: str | None,
              progress: Progress, referrers: Sequence[Referrer] = ()) -> Written:
        tag = self.tag or tag or self.default_tag
        fix = (f"free space on the disk that holds {self.path}, or write the archive to "
               "another disk (--output oci-archive:FILE)")
        # the atomic writer removes its partial file on any failure
        with disk_space(self.path, fix=fix), atomic_writer(self.path) as handle:
            write_archive(handle, image, blobs, tag=tag, repository=self.repository,
                          referrers=referrers)
        progress(f"wrote OCI archive {self.path} (tag {tag})")
        return Written(f"oci-archive:{self.path}", image.manifest_digest)
