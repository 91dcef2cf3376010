"""What every output provides."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reprolock.oci.blobstore import BlobStore
from reprolock.oci.model import Image

if TYPE_CHECKING:
    from reprolock.output.referrers import Referrer

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Written:
    where: str  # how to refer to the result, e.g. oci:build/image:latest
    digest: str  # the manifest digest there (for docker: the image ID)


class Output(abc.ABC):
    default_tag = "latest"

    @abc.abstractmethod
    def write(self, image: Image, blobs: BlobStore, *, tag: str | None,
              progress: Progress, referrers: Sequence[Referrer] = ()) -> Written:
        """Put ``image`` there, with the artifacts that refer to it where the output can
        hold them; on failure leave what was there before."""
