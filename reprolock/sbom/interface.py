"""What an SBOM generator gives: reproducible bytes and the package URLs they list."""

from __future__ import annotations

import abc
import fnmatch
import functools
import posixpath
import re
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


@dataclass(frozen=True)
class CatalogReads:
    """Which files of an image a generator's catalogers may open, as reviewed for one
    version of it: every file in a directory whose name ends with one of ``dir_suffixes``
    or whose path contains one of ``path_parts``, and every file whose name matches one
    of ``names`` (fnmatch patterns, case-sensitive). Directories and links always stay."""

    key: str  # names this rule in caches: a new rule must never reuse an old view
    names: tuple[str, ...]
    dir_suffixes: tuple[str, ...]
    path_parts: tuple[str, ...]

    def needs(self, path: str, size: int) -> bool:
        del size  # the catalogers choose files by name alone
        if self._names.match(posixpath.basename(path)) or self._dirs.search(path):
            return True
        return any(part in f"/{path}" for part in self.path_parts)

    # One expression each: asked once per file of a layer (120,000 on S2), a loop over the
    # 60 patterns took 1.9 s per 100,000 files.
    @functools.cached_property
    def _names(self) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.names))

    @functools.cached_property
    def _dirs(self) -> re.Pattern[str]:
        """A directory whose name ends with a suffix, somewhere above the file."""
        return re.compile("(?:" + "|".join(re.escape(d) for d in self.dir_suffixes) + ")/")


class SbomGenerator(abc.ABC):
    @abc.abstractmethod
    def generate(self, layout: Path, *, name: str, image_digest: str, created: str,
                 fmt: str, rename: Mapping[str, str] | None = None) -> Sbom:
        """Describe the image in the OCI layout ``layout``, reproducibly. ``rename`` maps
        digests (64 hex digits) the layout holds to the ones its output must name instead:
        the layout may be a thinned view of the image the SBOM describes."""

    def reads(self) -> CatalogReads | None:
        """What this generator's catalogers open; None when unknown, and then it is given
        the whole image."""
        return None


__all__ = ["FORMATS", "CatalogReads", "Sbom", "SbomError", "SbomFormat", "SbomGenerator"]
