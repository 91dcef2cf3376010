"""The lock workflow, built on the boundaries: an image source, a resolver, an index.

    >>> from reprolock.config import load_config
    >>> from reprolock.core import Locker
    >>> from reprolock.resolver import resolver_for
    >>> config = load_config(Path("fixtures/example"))            # doctest: +SKIP
    >>> outcome = Locker(config, resolver_for(config.resolver)).lock()  # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reprolock import __version__
from reprolock._internal.cache import default_cache_dir
from reprolock._internal.urls import expand_env, is_remote, redact
from reprolock.config import Config
from reprolock.errors import ArtifactError, LockFileError, ReprolockError
from reprolock.image.interface import check_platform
from reprolock.image.probe import probe
from reprolock.image.reference import open_source
from reprolock.index.simple import DistFile, IndexClient
from reprolock.index.wheels import wheel_modules
from reprolock.lock.inputs import collect_inputs, inputs_digest
from reprolock.lock.io import read_lock, render, write_lock
from reprolock.lock.model import Artifact, BaseImage, Lock, Package
from reprolock.resolver.compiled import preferred_text
from reprolock.resolver.interface import IndexSettings, Pin, Resolution, ResolveRequest, Resolver
from reprolock.target import Platform, Target, best_wheel, wheel_platforms

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LockOutcome:
    lock: Lock
    path: Path
    changed: bool
    changes: tuple[str, ...]
    warnings: tuple[str, ...]


class Locker:
    def __init__(self, config: Config, resolver: Resolver, *, cache_dir: Path | None = None,
                 progress: Progress | None = None) -> None:
        self.config = config
        self.resolver = resolver
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self.progress = progress or (lambda _msg: None)

    def lock(self, *, upgrade: bool = False, upgrade_packages: tuple[str, ...] = ()) -> LockOutcome:
        config = self.config
        inputs = collect_inputs(config)
        previous = self._previous()
        warnings: list[str] = []
        base, target = self._base(warnings)
        self.resolver.check_target(target)
        settings = self._index_settings()
        request = ResolveRequest(
            root=config.root, inputs=tuple(config.root / r for r in config.requirements),
            target=target, index=settings, upgrade=upgrade, upgrade_packages=upgrade_packages,
            preferred=_preferred(previous))
        self.progress(f"resolving with {self.resolver.name} for {target.describe()}")
        resolution = self.resolver.resolve(request)
        packages = self._packages(resolution, target, settings)
        lock = Lock(
            inputs_digest=inputs_digest(inputs), inputs=inputs, target=_target_json(target),
            base=base, resolver={"name": resolution.resolver,
                                 "version": resolution.resolver_version},
            indexes=tuple(self._indexes()), packages=tuple(packages),
            generator={"name": "reprolock", "version": __version__})
        old_text = render(previous) if previous else None
        text = write_lock(config.lock_path, lock)
        changes = tuple(describe_package_changes(previous, lock)) if previous else ()
        return LockOutcome(lock, config.lock_path, text != old_text, changes, tuple(warnings))

    def _previous(self) -> Lock | None:
        try:
            return read_lock(self.config.lock_path, cache_dir=self.cache_dir)
        except LockFileError:
            return None  # a missing or broken lock is simply replaced

    def _base(self, warnings: list[str]) -> tuple[BaseImage, Target]:
        platform = Platform.parse(self.config.platform)
        self.progress(f"reading base image {self.config.base}")
        source = open_source(self.config.base, root=self.config.root)
        try:
            image = source.resolve(platform)
            check_platform(image, platform)
            facts = probe(source, image, cache_dir=self.cache_dir)
        finally:
            source.close()
        if not source.pinned:
            warnings.append(
                f"base {self.config.base!r} names no digest; it resolved to {image.identity}, "
                "which the lock records, but the tag can move: write "
                f"base = \"...@{image.identity}\" to pin it")
        target = Target(platform, facts.python_version, facts.libc_family, facts.libc_version)
        base = BaseImage(
            reference=self.config.base, digest=image.identity, index_digest=image.index_digest,
            manifest_digest=image.manifest_digest, config_digest=image.config_digest,
            os=image.os or platform.os, architecture=image.architecture or platform.arch,
            python_path=facts.python_path, python_version=facts.python_version,
            libc=facts.libc_family, libc_version=facts.libc_version)
        return base, target

    def _index_settings(self) -> IndexSettings:
        index = self.config.index
        links = tuple(expand_env(link) if is_remote(expand_env(link))
                      else str(self.config.root / link) for link in index.find_links)
        return IndexSettings(
            url=expand_env(index.url) if index.url else None,
            extra_urls=tuple(expand_env(u) for u in index.extra_urls),
            find_links=links, no_index=index.no_index)

    def _indexes(self) -> list[dict[str, str]]:
        index = self.config.index
        found = []
        if not index.no_index:
            found.append({"kind": "index", "url": redact(index.url or "https://pypi.org/simple")})
            found += [{"kind": "extra-index", "url": redact(u)} for u in index.extra_urls]
        found += [{"kind": "find-links", "url": redact(u)} for u in index.find_links]
        return found

    def _packages(self, resolution: Resolution, target: Target,
                  settings: IndexSettings) -> list[Package]:
        client = IndexClient(settings)
        self.progress(f"finding artifacts of {len(resolution.pins)} packages")
        files = client.files_for((p.name, p.version) for p in resolution.pins)
        chosen = {p.name: self._choose(p, files[(p.name, p.version)], target)
                  for p in resolution.pins}
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            modules = dict(zip(chosen, pool.map(
                lambda d: wheel_modules(d, cache_dir=self.cache_dir, session=client.session),
                chosen.values()), strict=True))
        return [self._package(p, chosen[p.name], modules[p.name]) for p in resolution.pins]

    def _choose(self, pin: Pin, files: list[DistFile], target: Target) -> DistFile:
        if not pin.hashes:
            raise ArtifactError(f"the resolver gave no hashes for {pin.name}=={pin.version}",
                                hint="this is a resolver problem; try the other resolver")
        hashes = {h.removeprefix("sha256:") for h in pin.hashes}
        known = [f for f in files if f.sha256 in hashes]
        best = best_wheel(known, target)
        if best is None:
            offered = wheel_platforms([f.filename for f in known]) or ["no wheels (sdist only)"]
            raise ArtifactError(
                f"{pin.name}=={pin.version} has no wheel for the target "
                f"({target.describe()}); its files offer: {', '.join(offered[:8])}",
                hint="pin a version that ships a wheel for the target, publish a wheel to a "
                "find-links directory, or pick a base image that matches the wheels; "
                "reprolock does not build sdists",
            )
        return best

    def _package(self, pin: Pin, dist: DistFile, modules: tuple[str, ...]) -> Package:
        assert dist.sha256 is not None
        if dist.path is not None:
            artifact = Artifact(dist.filename, dist.sha256, dist.size,
                                path=os.path.relpath(dist.path, self.config.root))
        else:
            artifact = Artifact(dist.filename, dist.sha256, dist.size, url=redact(dist.url or ""))
        direct = any(v.startswith("-r ") for v in pin.via)
        return Package(pin.name, pin.version, pin.hashes, artifact, direct, pin.via, modules)


def _preferred(previous: Lock | None) -> str:
    if previous is None:
        return ""
    return preferred_text([(p.name, p.version, p.hashes) for p in previous.packages])


def _target_json(target: Target) -> dict[str, object]:
    return {"platform": str(target.platform), "os": target.platform.os,
            "architecture": target.platform.arch,
            "python": {"implementation": target.implementation,
                       "version": target.python_version, "abi": target.abi},
            "libc": {"family": target.libc_family, "version": target.libc_version}}


def describe_package_changes(old: Lock, new: Lock) -> list[str]:
    before = {p.name: p for p in old.packages}
    after = {p.name: p for p in new.packages}
    lines = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None and b is not None:
            lines.append(f"+ {name} {b.version}")
        elif b is None and a is not None:
            lines.append(f"- {name} {a.version}")
        elif a and b and a.version != b.version:
            lines.append(f"~ {name} {a.version} → {b.version}")
        elif a and b and a.artifact.sha256 != b.artifact.sha256:
            lines.append(f"~ {name} {a.version}: artifact {a.artifact.filename} → "
                         f"{b.artifact.filename}")
    if old.base.digest != new.base.digest:
        lines.append(f"~ base {old.base.digest} → {new.base.digest}")
    return lines


__all__ = ["LockOutcome", "Locker", "ReprolockError", "default_cache_dir"]
