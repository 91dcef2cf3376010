"""Images in a Docker Engine (``docker-daemon:REF``), through the docker SDK."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO, Any

from reprolock.errors import ImageSourceError
from reprolock.image.interface import ImageSource, ResolvedImage
from reprolock.image.layout import TarFiles, open_archive
from reprolock.target import Platform

START_HINT = ("start the engine (for example 'dockerd --iptables=false --bridge=none &'), "
              "or use an oci-layout: or oci-archive: base that needs no daemon")


def docker_client() -> Any:
    import docker  # slow to import; only when a daemon is really used

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the SDK raises many unrelated types for "no engine"
        raise ImageSourceError(f"cannot reach the Docker Engine: {exc}", hint=START_HINT) from exc
    return client


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
        import docker.errors

        client = docker_client()
        try:
            image = client.images.get(self.name)
        except docker.errors.ImageNotFound as exc:
            raise ImageSourceError(
                f"the Docker Engine has no image {self.name!r}",
                hint=f"build or pull it first (docker pull {self.name})") from exc
        path = Path(self._tmp.name) / "image.tar"
        with open(path, "wb") as out:
            for chunk in image.save(named=False):
                out.write(chunk)
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


__all__ = ["DockerDaemonSource", "TarFiles", "docker_client"]
