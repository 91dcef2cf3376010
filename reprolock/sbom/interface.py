"""What an SBOM generator gives: reproducible bytes and the package URLs they list."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from reprolock.errors import SbomError


class SbomFormat(NamedTuple):
    """An SBOM format: syft's name for it, the file it is written to beside the lock and
    its media type as an OCI referrer. A named tuple, not a dataclass, because callers
    still index it (``FORMATS[name][2]``)."""

    syft_output: str
    file_name: str
    media_type: str


# The one list of SBOM formats, by the name --sbom-format and the lock's sbom.format use.
# The lock schema repeats the names as an enum; tests/test_registries.py keeps them equal.
# The first is the default.
FORMATS: Mapping[str, SbomFormat] = MappingProxyType({
    "spdx": SbomFormat("spdx-json", "reprolock.sbom.spdx.json", "application/spdx+json"),
    "cyclonedx": SbomFormat("cyclonedx-json", "reprolock.sbom.cdx.json",
                            "application/vnd.cyclonedx+json"),
})


@dataclass(frozen=True)
class Sbom:
    data: bytes
    format: str  # spdx or cyclonedx
    tool: str  # e.g. syft
    tool_version: str
    purls: frozenset[str]

    @property
    def file_name(self) -> str:
        return FORMATS[self.format].file_name

    @property
    def media_type(self) -> str:
        return FORMATS[self.format].media_type


class SbomGenerator(abc.ABC):
    @abc.abstractmethod
    def generate(self, layout: Path, *, name: str, image_digest: str, created: str,
                 fmt: str) -> Sbom:
        """Describe the image in the OCI layout ``layout``, reproducibly."""


__all__ = ["FORMATS", "Sbom", "SbomError", "SbomFormat", "SbomGenerator"]
