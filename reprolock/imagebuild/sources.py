"""Lock a package from its sdist: fetch the sdist (checked against the index's sha256),
pin its build requirements with hashes, build the wheel, and record both files.

A wheel already built from the same sdist with the same build requirements, Python and
uv is taken from the cache: the build is deterministic, and ``verify`` and a build on a
cold cache build it again and compare.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reprolock._internal.files import atomic_write_text, sha256_bytes
from reprolock.imagebuild.artifacts import ArtifactStore
from reprolock.imagebuild.sdist import SdistBuilder, read_sdist
from reprolock.lock.model import Artifact, BuildRequirement, SourceBuild

#: SOURCE_DATE_EPOCH of every sdist build: 1980-01-01, the first time a zip can hold
SDIST_EPOCH = 315532800

ResolveRequires = Callable[[Sequence[str]], tuple[BuildRequirement, ...]]


@dataclass(frozen=True)
class BuiltWheel:
    artifact: Artifact  # the wheel, built=True
    source: SourceBuild
    path: Path  # in the artifact store


class SourceLocker:
    def __init__(self, store: ArtifactStore, builder: SdistBuilder, *,
                 resolve_requires: ResolveRequires, cache_dir: Path) -> None:
        self.store = store
        self.builder = builder
        self.resolve_requires = resolve_requires
        self.index = cache_dir / "sources"

    def lock(self, name: str, sdist: Artifact,
             kept: tuple[BuildRequirement, ...] | None) -> BuiltWheel:
        """``kept``: the build requirements the previous lock pinned for this very sdist,
        kept as earlier pins are, unless upgraded."""
        path = self.store.fetch(sdist, name)
        facts = read_sdist(path, name=name)
        requires = kept if kept is not None else self.resolve_requires(facts.requires)
        source = SourceBuild(sdist, requires, self.builder.python(),
                             {"name": self.builder.tool, "version": self.builder.version()},
                             SDIST_EPOCH)
        key = sha256_bytes(json.dumps(source.to_json(), sort_keys=True).encode())
        artifact = self._cached(key)
        if artifact is None:
            with tempfile.TemporaryDirectory(prefix="reprolock-sdist-") as tmp:
                wheel = self.builder.build(path, requires, Path(tmp), name=name,
                                           epoch=SDIST_EPOCH)
                sha256, size = self.store.keep(wheel)
            artifact = Artifact(wheel.name, sha256, size, built=True)
            self.index.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.index / f"{key}.json", json.dumps(artifact.to_json()))
        return BuiltWheel(artifact, source, self.store.path_for(artifact.sha256,
                                                                artifact.filename))

    def _cached(self, key: str) -> Artifact | None:
        from reprolock._internal.jsonio import read_json
        from reprolock.errors import ReprolockError

        try:
            data = read_json(self.index / f"{key}.json")
            artifact = Artifact.from_json(data, "cached build")
        except (ReprolockError, KeyError, TypeError, OSError):
            return None  # not built yet, or an entry this cache did not write
        path = self.store.path_for(artifact.sha256, artifact.filename)
        return artifact if artifact.built and path.is_file() and \
            self.store.valid(path, artifact.sha256) else None


__all__ = ["SDIST_EPOCH", "BuiltWheel", "SourceLocker"]
