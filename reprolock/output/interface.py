"""What every output provides."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from reprolock.build.builder import Image
from reprolock.build.store import BlobStore

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Written:
    where: str  # how to refer to the result, e.g. oci:build/image:latest
    digest: str  # the manifest digest there (for docker: the image ID)


class Output(abc.ABC):
    default_tag = "latest"

    @abc.abstractmethod
    def write(self, image: Image, blobs: BlobStore, *, tag: str | None,
              progress: Progress) -> Written:
        """Put ``image`` there; on failure leave what was there before."""
