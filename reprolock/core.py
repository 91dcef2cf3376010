"""The lock workflow, built on the boundaries: an image source, a resolver, an index.

    >>> from reprolock.config import load_config
    >>> from reprolock.core import Locker
    >>> from reprolock.resolver import resolver_for
    >>> config = load_config(Path("fixtures/example"))            # doctest: +SKIP
    >>> outcome = Locker(config, resolver_for(config.resolver)).lock()  # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import posixpath
import re
import sysconfig
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reprolock import __version__
from reprolock._internal.cache import default_cache_dir
from reprolock._internal.files import atomic_write_bytes, sha256_bytes, sha256_file
from reprolock._internal.urls import expand_env, is_remote, redact
from reprolock.build.store import cache_fix, disk_space, sweep_stale
from reprolock.config import Config
from reprolock.errors import (
    ArtifactError,
    IndexError_,
    LockFileError,
    ReprolockError,
)
from reprolock.image.interface import check_platform
from reprolock.image.probe import probe
from reprolock.image.reference import open_source, parse_reference
from reprolock.lock.inputs import collect_inputs, inputs_digest, pyproject_dependencies
from reprolock.lock.io import read_lock, render, write_lock
from reprolock.lock.model import (
    Artifact,
    BaseImage,
    BuildRequirement,
    ImageRecord,
    Lock,
    Package,
    SbomRecord,
    checked,
)
from reprolock.resolver._common import preferred_text
from reprolock.resolver.honesty import Honesty, with_pinned_hashes
from reprolock.resolver.interface import (
    IndexSettings,
    Pin,
    Resolver,
    ResolveRequest,
    index_credentials,
    index_settings,
)
from reprolock.resolver.requested import read_requested
from reprolock.sbom.interface import SbomError
from reprolock.target import Platform, Target, best_wheel, wheel_platforms

if TYPE_CHECKING:
    from reprolock.build.builder import BuildOptions, BuildResult, Image
    from reprolock.build.sources import BuiltWheel
    from reprolock.image.interface import ResolvedImage
    from reprolock.index.simple import DistFile, IndexClient
    from reprolock.inspection.codeset import CodeSet
    from reprolock.output.interface import Output, Written
    from reprolock.output.referrers import Referrer
    from reprolock.sbom.interface import Sbom
    from reprolock.signing.interface import Signer

Progress = Callable[[str], None]
PYPROJECT_REQUIREMENTS = "pyproject-dependencies.in"


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

    def lock(self, *, upgrade: bool = False, upgrade_packages: tuple[str, ...] = (),
             build: BuildOptions | None = None, sbom_format: str | None = "spdx",
             while_resolving: Callable[[], None] | None = None) -> LockOutcome:
        """Resolve, choose wheels, and (given ``build``) build the environment image whose
        digests the lock records. Nothing is written unless every step succeeds."""
        config = self.config
        inputs = collect_inputs(config)
        previous = self._previous()
        warnings: list[str] = []
        base, target = self._base(warnings)
        self.resolver.check_target(target)
        settings = self._index_settings()
        with tempfile.TemporaryDirectory(prefix="reprolock-inputs-") as tmp:
            request = ResolveRequest(
                root=config.root, inputs=self._resolver_inputs(Path(tmp)), target=target,
                index=settings, upgrade=upgrade, upgrade_packages=upgrade_packages,
                preferred=_preferred(previous), from_source=config.build_from_source)
            requested = read_requested((p, self._shown(p)) for p in request.inputs)
            self.progress(f"resolving with {self.resolver.name} for {target.describe()}")
            # sysconfig's first use is not thread-safe (it handed uv's finder None for EXE
            # in a fresh venv); fill it here before any thread can race for it
            sysconfig.get_config_vars()
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                # the resolver is a subprocess: work that does not need its answer overlaps
                future = pool.submit(self.resolver.resolve, request)
                _warm_up(target)
                if while_resolving is not None:
                    while_resolving()
                resolution = future.result()
        from reprolock.index.simple import IndexClient

        client = IndexClient(settings, cache_dir=self.cache_dir)
        pins = with_pinned_hashes(resolution.pins, requested)
        kept = _kept(previous, upgrade, upgrade_packages)
        honesty = Honesty(self.resolver, request, client, requested, kept)
        honesty.refuse_prereleases(pins)
        packages = self._packages(pins, target, client, request,
                                  _kept_builds(previous, kept, config.build_from_source))
        warnings += honesty.skipped_releases(pins)
        lock = Lock(
            inputs_digest=inputs_digest(inputs), inputs=inputs, target=_target_json(target),
            base=base, resolver={"name": resolution.resolver,
                                 "version": resolution.resolver_version},
            indexes=tuple(self._indexes()), packages=tuple(packages),
            generator={"name": "reprolock", "version": __version__})
        self._sbom: Sbom | None = None
        if build is not None:
            lock = self._with_image(lock, build, sbom_format)
        old_text = render(previous) if previous else None
        with disk_space(config.root, fix=f"free space on the disk that holds {config.root}"):
            text = self._write(lock)
        changes = tuple(describe_package_changes(previous, lock)) if previous else ()
        return LockOutcome(lock, config.lock_path, text != old_text, changes, tuple(warnings))

    def _write(self, lock: Lock) -> str:
        """Write the SBOM and the lock so that a crash at any point leaves a pair that
        'build' and 'verify' accept: the old one or the new one.

        Two files cannot be renamed into place at once, so the new SBOM goes first under
        a name of its own (with its sha256 in it), which a lock then names:
        from that write on, the new pair holds. Only then is the SBOM copied to its usual
        name and the lock rewritten to name that. Each write is atomic.
        """
        config, record = self.config, lock.sbom
        if self._sbom is not None and record is not None:
            usual = config.root / record.path
            if _sha256_or_none(usual) != record.sha256:  # else the old SBOM is the new one
                staged = _staged_name(record.path, record.sha256)
                atomic_write_bytes(config.root / staged, self._sbom.data)
                write_lock(config.lock_path, dataclasses.replace(
                    lock, sbom=dataclasses.replace(record, path=staged)),
                    cache_dir=self.cache_dir)
                atomic_write_bytes(usual, self._sbom.data)
        text = write_lock(config.lock_path, lock, cache_dir=self.cache_dir)
        _sweep_staged(config.root, keep=record.path if record else None)
        # the atomic writer's temporary files of a lock killed mid-write, an hour on
        sweep_stale(config.lock_path.parent, prefix=f".{config.lock_path.name}.")
        sweep_stale(config.root, prefix=".reprolock.sbom.")
        return text

    def _shown(self, path: Path) -> str:
        """An input's name in messages: as the config names it."""
        if path not in {self.config.root / r for r in self.config.requirements}:
            return "pyproject.toml"  # the file written from project.dependencies
        return Path(os.path.relpath(path, self.config.root)).as_posix()

    def _resolver_inputs(self, tmp: Path) -> tuple[Path, ...]:
        inputs = [self.config.root / r for r in self.config.requirements]
        if self.config.pyproject_dependencies:
            extra = tmp / PYPROJECT_REQUIREMENTS
            extra.write_text("\n".join(pyproject_dependencies(self.config.root)) + "\n")
            inputs.append(extra)
        return tuple(inputs)

    def _with_image(self, lock: Lock, options: BuildOptions, sbom_format: str | None) -> Lock:
        from reprolock.build.builder import Builder

        with disk_space(self.cache_dir, fix=cache_fix(self.cache_dir)):
            result = Builder(self.config, lock, cache_dir=self.cache_dir, options=options,
                             progress=self.progress).build(code=None)
        env = result.env
        record = ImageRecord(
            config_digest=env.config_digest, manifest_digest=env.manifest_digest,
            layers=tuple({"digest": x.blob.digest, "diffId": x.blob.diff_id, "size": x.blob.size,
                          "mediaType": x.blob.media_type, "holds": x.holds} for x in env.layers),
            compression=result.compressor.describe(), source_date_epoch=result.mtime,
            prefix=result.prefix, records=dict(result.records))
        lock = dataclasses.replace(lock, image=record)
        if sbom_format is not None:
            self._sbom = make_sbom(lock, result, fmt=sbom_format, progress=self.progress)
            lock = dataclasses.replace(lock, sbom=SbomRecord(
                path=self._sbom.file_name, format=self._sbom.format,
                sha256=sha256_bytes(self._sbom.data), tool=self._sbom.tool,
                tool_version=self._sbom.tool_version))
        return lock

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
            warnings.append(unpinned_base_warning(self.config.base, image))
        target = Target(platform, facts.python_version, facts.libc_family, facts.libc_version)
        base = BaseImage(
            reference=self.config.base, digest=image.identity, index_digest=image.index_digest,
            manifest_digest=image.manifest_digest, config_digest=image.config_digest,
            os=image.os or platform.os, architecture=image.architecture or platform.arch,
            python_path=facts.python_path, python_version=facts.python_version,
            libc=facts.libc_family, libc_version=facts.libc_version)
        return base, target

    def _index_settings(self) -> IndexSettings:
        return index_settings(self.config)

    def _indexes(self) -> list[dict[str, str]]:
        index = self.config.index
        found = []
        if not index.no_index:
            found.append({"kind": "index", "url": redact(index.url or "https://pypi.org/simple")})
            found += [{"kind": "extra-index", "url": redact(u)} for u in index.extra_urls]
        found += [{"kind": "find-links", "url": redact(u)} for u in index.find_links]
        return found

    def _packages(self, pins: tuple[Pin, ...], target: Target, client: IndexClient,
                  request: ResolveRequest,
                  kept_builds: dict[tuple[str, str], tuple[BuildRequirement, ...]],
                  ) -> list[Package]:
        from reprolock.index.simple import DistFile
        from reprolock.index.wheels import wheel_modules

        self.progress(f"finding artifacts of {len(pins)} packages")
        files = client.files_for((p.name, p.version, p.hashes) for p in pins)
        sources = set(self.config.build_from_source)
        chosen = {p.name: self._choose(p, files[(p.name, p.version)], target, sdist=p.name
                                       in sources) for p in pins}
        built = self._built(pins, chosen, request, kept_builds)
        for name, wheel in built.items():
            chosen[name] = DistFile(wheel.artifact.filename, None, wheel.path,
                                    wheel.artifact.sha256, wheel.artifact.size)
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            modules = dict(zip(chosen, pool.map(
                lambda d: wheel_modules(d, cache_dir=self.cache_dir,
                                        session=lambda: client.session),
                chosen.values()), strict=True))
        packages = [self._package(p, chosen[p.name], modules[p.name]) for p in pins]
        return [dataclasses.replace(p, artifact=built[p.name].artifact,
                                    source=built[p.name].source) if p.name in built else p
                for p in packages]

    def _built(self, pins: tuple[Pin, ...], chosen: dict[str, DistFile],
               request: ResolveRequest,
               kept: dict[tuple[str, str], tuple[BuildRequirement, ...]],
               ) -> dict[str, BuiltWheel]:
        """The wheels of the packages that the config builds from their sdist."""
        from reprolock.build.artifacts import ArtifactStore
        from reprolock.build.sdist import SdistBuilder
        from reprolock.build.sources import SourceLocker

        wanted = [p for p in pins if p.name in self.config.build_from_source]
        if not wanted:
            return {}
        store = ArtifactStore(self.cache_dir, project=self.config.root,
                              credentials=index_credentials(self.config))
        locker = SourceLocker(store, SdistBuilder(request.index), cache_dir=self.cache_dir,
                              resolve_requires=lambda reqs: self._build_requires(request, reqs))
        built = {}
        for pin in wanted:
            self.progress(f"building {pin.name} {pin.version} from its sdist")
            sdist = self._artifact(pin, chosen[pin.name], kind="sdist")
            built[pin.name] = locker.lock(pin.name, sdist,
                                          kept.get((pin.name, sdist.sha256)))
        return built

    def _build_requires(self, request: ResolveRequest, requires: Sequence[str],
                        ) -> tuple[BuildRequirement, ...]:
        """Pin an sdist's build requirements (wheels only, with hashes) for the target."""
        with tempfile.TemporaryDirectory(prefix="reprolock-build-requires-") as tmp:
            wanted = Path(tmp) / "build-requires.in"
            wanted.write_text("".join(f"{r}\n" for r in requires), encoding="utf-8")
            resolution = self.resolver.resolve(dataclasses.replace(
                request, inputs=(wanted,), preferred="", upgrade=True, upgrade_packages=(),
                from_source=()))
        return tuple(BuildRequirement(p.name, p.version, p.hashes) for p in resolution.pins)

    def _choose(self, pin: Pin, files: list[DistFile], target: Target, *,
                sdist: bool = False) -> DistFile:
        if not pin.hashes:
            raise ArtifactError(f"the resolver gave no hashes for {pin.name}=={pin.version}",
                                hint="this is a resolver problem; try the other resolver")
        hashes = {h.removeprefix("sha256:") for h in pin.hashes}
        known = [f for f in files if f.sha256 in hashes]
        if sdist:
            found = sorted((f for f in known if f.filename.endswith((".tar.gz", ".zip"))),
                           key=lambda f: (not f.filename.endswith(".tar.gz"), f.filename))
            if not found:
                raise ArtifactError(
                    f"{pin.name}=={pin.version} has no sdist, and dependencies."
                    "build-from-source names it", hint=f"remove {pin.name} from "
                    "dependencies.build-from-source: its wheels are used then")
            return found[0]
        best = best_wheel(known, target)
        if best is None:
            offered = wheel_platforms([f.filename for f in known]) or ["no wheels (sdist only)"]
            raise ArtifactError(
                f"{pin.name}=={pin.version} has no wheel for the target "
                f"({target.describe()}); its files offer: {', '.join(offered[:8])}",
                hint="pin a version that ships a wheel for the target, publish a wheel to a "
                "find-links directory, or pick a base image that matches the wheels; a "
                f"pure-Python sdist is built into a wheel if you add \"{pin.name}\" to "
                "dependencies.build-from-source",
            )
        return best

    def _package(self, pin: Pin, dist: DistFile, modules: tuple[str, ...]) -> Package:
        artifact = self._artifact(pin, dist, kind="wheel")
        via = tuple(sorted({"-r pyproject.toml" if v.startswith("-r ") and
                            v.endswith(PYPROJECT_REQUIREMENTS) else v for v in pin.via}))
        direct = any(v.startswith("-r ") for v in via)
        return Package(pin.name, pin.version, pin.hashes, artifact, direct, via, modules)

    def _artifact(self, pin: Pin, dist: DistFile, *, kind: str) -> Artifact:
        assert dist.sha256 is not None
        # the index's word becomes a cache path at build time: refuse it here, by name
        checked(dist.filename, kind, f"file name for {pin.name}=={pin.version}",
                error=IndexError_, owner="the index's",
                hint=f"the index serves a file name that is not a {kind}'s; do not use it")
        if dist.path is not None:
            return Artifact(dist.filename, dist.sha256, dist.size,
                            path=self._as_written(dist.path))
        return Artifact(dist.filename, dist.sha256, dist.size, url=redact(dist.url or ""))

    def _as_written(self, wheel: Path) -> str:
        """A find-links wheel's path as the config's entry names it: an absolute
        directory stays absolute (a clone at another depth still finds it), a relative
        one stays relative to the project."""
        for link in self.config.index.find_links:
            if not is_remote(expand_env(link)) and Path(str(self.config.root / link)) == \
                    wheel.parent:
                folder = posixpath.normpath(Path(link).as_posix())
                return wheel.name if folder == "." else posixpath.join(folder, wheel.name)
        return Path(os.path.relpath(wheel, self.config.root)).as_posix()


def _staged_name(usual: str, sha256: str) -> str:
    """``reprolock.sbom.<sha256>.spdx.json`` for ``reprolock.sbom.spdx.json``: beside it
    (the lock names one file of the project root), and never the name of another SBOM."""
    stem, dot, kind = usual.removesuffix(".json").rpartition(".")
    return f"{stem}.{sha256}.{kind}.json" if dot else f"{usual}.{sha256}.json"


#: What :func:`_staged_name` makes of the SBOM names reprolock writes, and nothing else.
_STAGED = re.compile(r"reprolock\.sbom\.[0-9a-f]{64}\.(spdx|cdx)\.json")


def _sha256_or_none(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def _sweep_staged(root: Path, *, keep: str | None) -> None:
    """Remove the staged SBOMs no lock names any more: left by a lock that was killed,
    or by one that finished (the lock names the SBOM's usual name again)."""
    for entry in root.glob("reprolock.sbom.*.json"):
        if entry.name != keep and _STAGED.fullmatch(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)


def _warm_up(target: Target) -> None:
    """What the steps after resolution need, done while the resolver runs."""
    import reprolock.index.simple
    import reprolock.index.wheels
    import reprolock.resolver.compiled  # noqa: F401

    target.tags()


def _kept_builds(previous: Lock | None, kept: Mapping[str, str],
                 names: Sequence[str]) -> dict[tuple[str, str], tuple[BuildRequirement, ...]]:
    """The build requirements the previous lock pinned, by (package, sdist sha256), for
    the packages that keep their pins."""
    if previous is None:
        return {}
    return {(p.name, p.source.sdist.sha256): p.source.requires for p in previous.packages
            if p.source is not None and p.name in names and p.name in kept}


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


def _kept(previous: Lock | None, upgrade: bool, upgrade_packages: tuple[str, ...],
          ) -> dict[str, str]:
    """The previous lock's versions that the resolver was asked to keep."""
    from packaging.utils import canonicalize_name

    if previous is None or upgrade:
        return {}
    moved = {canonicalize_name(n) for n in upgrade_packages}
    return {p.name: p.version for p in previous.packages if p.name not in moved}


def unpinned_base_warning(reference: str, image: ResolvedImage) -> str:
    head = (f"base {reference!r} names no digest; it resolved to {image.identity}, which "
            "the lock records, but what it names can move")
    pinned = pinned_reference(reference, image)
    if pinned is None:
        return (f"{head}. A docker-archive cannot name a digest: to pin the base, copy it "
                "to an OCI archive (skopeo copy docker-archive:FILE oci-archive:NEW) and "
                "write base = \"oci-archive:NEW@sha256:...\" with the digest it reports")
    return f"{head}: write base = \"{pinned}\" to pin it"


def pinned_reference(reference: str, image: ResolvedImage) -> str | None:
    """``reference`` naming ``image`` by digest, in the form its scheme parses (None for a
    docker-archive, which has none)."""
    ref = parse_reference(reference)
    if ref.scheme in ("oci-layout", "oci-archive"):
        # the digest picks an entry of index.json (a tag may not stand beside it): the
        # image index when the entry is one, else the manifest
        return f"{ref.scheme}:{ref.location}@{image.index_digest or image.identity}"
    if ref.scheme == "docker-archive":
        return None
    if ref.scheme == "docker-daemon":
        # the image ID, its config digest: the Engine finds it by that whatever its tags
        return f"docker-daemon:{image.config_digest}"
    return f"{reference}@{image.identity}"  # NAME:TAG@sha256:... pins a registry image


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


@dataclass(frozen=True)
class BuildReport:
    manifest_digest: str
    config_digest: str
    env_manifest_digest: str
    env_config_digest: str
    env_matches_lock: bool
    code_tree: str
    layers: tuple[dict[str, object], ...]
    written: tuple[Written, ...]
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"manifestDigest": self.manifest_digest, "configDigest": self.config_digest,
                "environment": {"manifestDigest": self.env_manifest_digest,
                                "configDigest": self.env_config_digest,
                                "matchesLock": self.env_matches_lock},
                "codeTree": self.code_tree, "layers": list(self.layers),
                "outputs": [{"where": w.where, "digest": w.digest} for w in self.written],
                "warnings": list(self.warnings)}


def build_image(config: Config, options: BuildOptions, *, outputs: Sequence[Output],
                tag: str | None, progress: Progress, cache_dir: Path | None = None,
                env_only: bool = False, signer: Signer | None = None,
                attestation: Path | None = None, attach: bool = True) -> BuildReport:
    """Build the full image from a fresh lock and the code checkout; write every output."""
    from reprolock.build.builder import Builder, iso_time
    from reprolock.inspection.codeset import collect_code
    from reprolock.lock.check import check_lock
    from reprolock.output.referrers import DSSE_MEDIA_TYPE, make_referrer

    cache = cache_dir if cache_dir is not None else default_cache_dir()
    freshness = check_lock(config, cache_dir=cache)
    if not freshness.fresh:
        raise LockFileError(f"{config.lockfile} is stale: {'; '.join(freshness.changes)}",
                            hint="run 'reprolock lock' first, then build")
    lock = read_lock(config.lock_path, cache_dir=cache)
    code = collect_code(config)
    warnings = []
    if code.untracked:
        warnings.append(f"{len(code.untracked)} untracked files are not in the image "
                        f"(first: {code.untracked[0]}); git add them or ignore them")
    warnings.extend(code.warnings)
    with disk_space(cache, fix=cache_fix(cache)):
        builder = Builder(config, lock, cache_dir=cache, options=options, progress=progress,
                          lock_bytes=config.lock_path.read_bytes())
        result = builder.build(code=code)
    assert result.full is not None
    matches = _env_matches(lock, result)
    if not matches:
        warnings.append(_env_mismatch(lock, result))
    image = result.env if env_only else result.full
    referrers = []
    if lock.sbom is not None:
        with disk_space(cache, fix=cache_fix(cache)):
            referrers.append(_sbom_referrer(config, lock, result, image))
    if signer is not None:
        envelope = _provenance(config, lock, code, image, signer)
        path = attestation or config.root / ".reprolock" / "build.dsse.json"
        data = (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()
        with disk_space(path, fix=f"free space on the disk that holds {path}"):
            atomic_write_bytes(path, data)
        progress(f"signed build provenance written to {path}")
        with disk_space(cache, fix=cache_fix(cache)):
            referrers.append(make_referrer(result.blobs, image, data=data,
                                           media_type=DSSE_MEDIA_TYPE,
                                           created=iso_time(result.mtime)))
    written = tuple(out.write(image, result.blobs, tag=tag, progress=progress,
                              referrers=referrers if attach else ()) for out in outputs)
    return BuildReport(
        manifest_digest=result.full.manifest_digest, config_digest=result.full.config_digest,
        env_manifest_digest=result.env.manifest_digest, env_config_digest=result.env.config_digest,
        env_matches_lock=matches, code_tree=code.tree_digest,
        layers=tuple({"digest": x.blob.digest, "diffId": x.blob.diff_id, "size": x.blob.size,
                      "holds": x.holds} for x in result.full.layers),
        written=written, warnings=tuple(warnings))


def _env_matches(lock: Lock, result: BuildResult) -> bool:
    record = lock.image
    if record is None or record.config_digest != result.env.config_digest:
        return False
    same_compressor = dict(record.compression) == result.compressor.describe()
    return not same_compressor or record.manifest_digest == result.env.manifest_digest


def _env_mismatch(lock: Lock, result: BuildResult) -> str:
    if lock.image is None:
        return ("the lock records no environment image (it was made with --no-build); run "
                "'reprolock lock' to record it")
    return (f"the environment image built now ({result.env.config_digest}) is not the one the "
            f"lock records ({lock.image.config_digest}); 'reprolock verify' will report the "
            "difference")


SBOM_SOURCE_NAME = "reprolock-environment"


def make_sbom(lock: Lock, result: BuildResult, *, fmt: str, progress: Progress) -> Sbom:
    """The environment image's SBOM by syft; every locked package must be in it."""
    from packaging.utils import canonicalize_name

    from reprolock.build.builder import iso_time
    from reprolock.output.layout import LayoutOutput
    from reprolock.sbom.syft import SyftGenerator

    progress("SBOM of the environment image (syft)")
    with tempfile.TemporaryDirectory(prefix="reprolock-sbom-") as tmp:
        layout = Path(tmp) / "layout"
        fix = (f"free space on the disk that holds {tempfile.gettempdir()}, or point TMPDIR "
               "at a disk with room")
        LayoutOutput(layout, "environment", fix=fix).write(result.env, result.blobs, tag=None,
                                                            progress=lambda _m: None)
        sbom = SyftGenerator().generate(layout, name=SBOM_SOURCE_NAME,
                                        image_digest=result.env.manifest_digest,
                                        created=iso_time(result.mtime), fmt=fmt)
    listed = {_purl_key(p, canonicalize_name) for p in sbom.purls if p.startswith("pkg:pypi/")}
    missing = [f"{p.name} {p.version}" for p in lock.packages
               if (canonicalize_name(p.name), p.version) not in listed]
    if missing:
        raise SbomError(
            f"the SBOM that syft made does not list {len(missing)} locked packages: "
            f"{', '.join(missing[:10])}",
            hint="syft finds packages through *.dist-info/METADATA; check that the wheels "
            "install a dist-info directory, or report this")
    return sbom


def _purl_key(purl: str, canonicalize: Callable[[str], str]) -> tuple[str, str]:
    body = purl.removeprefix("pkg:pypi/").split("?", 1)[0].split("#", 1)[0]
    name, _, version = body.partition("@")
    from urllib.parse import unquote

    return canonicalize(unquote(name)), unquote(version)


def _sbom_referrer(config: Config, lock: Lock, result: BuildResult, image: Image) -> Referrer:
    """The locked SBOM, checked against the lock's digest, as an artifact of the image."""
    from reprolock.build.builder import iso_time
    from reprolock.output.referrers import make_referrer
    from reprolock.sbom.interface import FORMATS
    from reprolock.signing.interface import VerificationFailed

    assert lock.sbom is not None
    path = config.root / lock.sbom.path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VerificationFailed(f"the SBOM {lock.sbom.path} named by the lock is missing",
                                 hint="run 'reprolock lock' to write it again") from exc
    if sha256_bytes(data) != lock.sbom.sha256:
        raise VerificationFailed(
            f"{lock.sbom.path} was changed after locking (sha256 {sha256_bytes(data)}, the "
            f"lock records {lock.sbom.sha256})", hint="run 'reprolock lock' to write it again")
    return make_referrer(result.blobs, image, data=data,
                         media_type=FORMATS[lock.sbom.format][2], created=iso_time(result.mtime))


def _provenance(config: Config, lock: Lock, code: CodeSet, image: Image,
                signer: Signer) -> dict[str, object]:
    """An in-toto Statement with a SLSA provenance predicate, in a signed DSSE envelope."""
    from reprolock.signing.dsse import sign_envelope
    from reprolock.signing.provenance import statement

    deps: list[dict[str, object]] = [{
        "uri": lock.base.reference, "name": "base image",
        "digest": {"sha256": lock.base.digest.removeprefix("sha256:")}}]
    deps += [{"uri": p.artifact.url or p.artifact.path, "name": p.artifact.filename,
              "digest": {"sha256": p.artifact.sha256}} for p in lock.packages]
    external = {"inputsDigest": lock.inputs_digest, "config": lock.inputs.config.sha256,
                "codeTree": code.tree_digest,
                "gitCommit": code.git.commit if code.git else None,
                "environmentImage": lock.image.manifest_digest if lock.image else None}
    doc = statement(image_name=IMAGE_SUBJECT, manifest_digest=image.manifest_digest,
                    lock_name=config.lockfile, lock_digest=sha256_file(config.lock_path),
                    external=external, dependencies=deps)
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return sign_envelope(payload, signer)


IMAGE_SUBJECT = "image"
