"""Images in a Docker Engine (``docker-daemon:REF``), through :mod:`reprolock.engine.docker`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO

from reprolock.engine.docker import connect, engine_errors, get_image, save_to
from reprolock.errors import ImageSourceError
from reprolock.image.interface import ImageSource, ResolvedImage
from reprolock.image.layout_reader import open_archive
from reprolock.target import Platform


class DockerDaemonSource(ImageSource):
    """Saves the image once into a temporary ``docker save`` tar and reads that."""

    def __init__(self, reference: str, name: str) -> None:
        super().__init__(reference)
        self.name = name
        self._tmp = tempfile.TemporaryDirectory(prefix="reprolock-daemon-")
        self._inner: ImageSource | None = None

    @property
    def pinned(self) -> bool:
        return "@sha256:" in self.name or self.name.startswith("sha256:")

    def resolve(self, platform: Platform) -> ResolvedImage:
        image = get_image(connect(error=ImageSourceError), self.name, error=ImageSourceError,
                          hint=f"build or pull it first (docker pull {self.name})")
        path = Path(self._tmp.name) / "image.tar"
        with engine_errors(f"export the image {self.name!r}"):
            save_to(image, path)
        self._inner = open_archive(self.reference, path, tag=None, docker=True)
        resolved = self._inner.resolve(platform)
        repo_digest = next(iter(image.attrs.get("RepoDigests") or []), None)
        if repo_digest and resolved.manifest_digest is None:
            resolved = ResolvedImage(
                reference=resolved.reference,
                index_digest=None,
                manifest_digest=repo_digest.split("@", 1)[1],
                config_digest=resolved.config_digest,
                config=resolved.config,
                layers=resolved.layers,
            )
        return resolved

    def open_blob(self, digest: str) -> IO[bytes]:
        if self._inner is None:
            raise ImageSourceError("resolve the image before reading its blobs")
        return self._inner.open_blob(digest)

    def close(self) -> None:
        if self._inner:
            self._inner.close()
        self._tmp.cleanup()


__all__ = ["DockerDaemonSource"]
