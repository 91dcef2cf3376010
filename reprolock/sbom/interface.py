"""What an SBOM generator gives: reproducible bytes and the package URLs they list."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from reprolock.errors import ToolError

FORMATS = {"spdx": ("spdx-json", "reprolock.sbom.spdx.json", "application/spdx+json"),
           "cyclonedx": ("cyclonedx-json", "reprolock.sbom.cdx.json",
                         "application/vnd.cyclonedx+json")}


class SbomError(ToolError):
    """The SBOM tool failed or printed something that is not the SBOM asked for."""


@dataclass(frozen=True)
class Sbom:
    data: bytes
    format: str  # spdx or cyclonedx
    tool: str  # e.g. syft
    tool_version: str
    purls: frozenset[str]

    @property
    def file_name(self) -> str:
        return FORMATS[self.format][1]

    @property
    def media_type(self) -> str:
        return FORMATS[self.format][2]


class SbomGenerator(abc.ABC):
    @abc.abstractmethod
    def generate(self, layout: Path, *, name: str, image_digest: str, created: str,
                 fmt: str) -> Sbom:
        """Describe the image in the OCI layout ``layout``, reproducibly."""
