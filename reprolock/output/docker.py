"""``docker[:NAME[:TAG]]``: load into the Docker Engine (:mod:`reprolock.engine.docker`)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from reprolock.errors import ImageSourceError, ToolError
from reprolock.oci.blobstore import BlobStore
from reprolock.oci.model import Image
from reprolock.output.archive import docker_name, write_archive
from reprolock.output.interface import Output, Progress, Written
from reprolock.output.referrers import Referrer


class DockerOutput(Output):
    def __init__(self, name: str | None) -> None:
        self.name = name

    def write(self, image: Image, blobs: BlobStore, *, tag: str | None,
              progress: Progress, referrers: Sequence[Referrer] = ()) -> Written:
        """The engine stores images only: artifacts that refer to one are not loaded."""
        from reprolock._internal.cache import default_cache_dir
        from reprolock.engine.docker import connect, load_archive, remember_config

        name = self.name or docker_name(tag or self.default_tag, "reprolock/image")
        if ":" not in name.rsplit("/", 1)[-1]:
            name = f"{name}:{tag or self.default_tag}"
        client = connect(error=ImageSourceError)
        with tempfile.TemporaryDirectory(prefix="reprolock-load-") as tmp:
            archive = Path(tmp) / "image.tar"
            with open(archive, "wb") as handle:
                write_archive(handle, image, blobs, tag=name, repository=name.rsplit(":", 1)[0])
            progress(f"loading into the Docker Engine as {name}")
            ids = load_archive(client, archive)
        if image.config_digest not in ids:
            raise ToolError(f"the Docker Engine loaded {sorted(ids)}, not {image.config_digest}",
                            hint="this is a bug in reprolock; please report it")
        # 'run' reads the config by the image ID: without an export of the whole image
        remember_config(default_cache_dir(), blobs.read(image.config_digest))
        return Written(f"docker-daemon:{name}", image.config_digest)
