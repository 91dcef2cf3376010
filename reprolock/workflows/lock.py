"""The lock workflow, built on the boundaries: an image source, a resolver, an index.

    >>> from reprolock.config import load_config
    >>> from reprolock.workflows.lock import Locker
    >>> from reprolock.resolver import resolver_for
    >>> config = load_config(Path("fixtures/example"))            # doctest: +SKIP
    >>> outcome = Locker(config, resolver_for(config.resolver)).lock()  # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import posixpath
import re
import sysconfig
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprolock import __version__
from reprolock._internal.cache import default_cache_dir
from reprolock._internal.files import atomic_write_bytes, sha256_bytes, sha256_file
from reprolock._internal.urls import expand_env, is_remote, redact
from reprolock.config import Config
from reprolock.errors import (
    ArtifactError,
    IndexError_,
    LockFileError,
    ReprolockError,
    ResolverError,
    UsageError,
)
from reprolock.image.interface import check_platform
from reprolock.image.probe import probe
from reprolock.image.reference import open_source, parse_reference
from reprolock.imagebuild.store import cache_fix, disk_space, sweep_stale
from reprolock.lock.accelerator import (
    base_cuda,
    cuda_of_packages,
    torch_family_problem,
    with_base,
)
from reprolock.lock.inputs import collect_inputs, inputs_digest, pyproject_dependencies
from reprolock.lock.io import read_lock, render, write_lock
from reprolock.lock.model import (
    Artifact,
    BaseImage,
    BuildRequirement,
    Compression,
    ImageRecord,
    Lock,
    LockTarget,
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
from reprolock.resolver.requested import Requested, read_requested
from reprolock.target import Platform, Target, best_wheel, wheel_platforms

if TYPE_CHECKING:
    from reprolock.image.interface import ResolvedImage
    from reprolock.imagebuild.builder import BuildOptions
    from reprolock.imagebuild.sources import BuiltWheel
    from reprolock.index.simple import DistFile, IndexClient
    from reprolock.inspection.codeset import CodeSet
    from reprolock.inspection.imports import ImportReport, Unprovided
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
    commit: tuple[str, ...] = ()  # the files that go into version control together

    def to_json(self) -> dict[str, object]:
        return {"lock": str(self.path), "changed": self.changed, "commit": list(self.commit),
                "changes": list(self.changes), "warnings": list(self.warnings),
                "packages": len(self.lock.packages), "inputsDigest": self.lock.inputs_digest,
                "base": self.lock.base.to_json()}


@dataclass(frozen=True)
class _CodeScan:
    code: CodeSet
    imports: ImportReport


class Locker:
    def __init__(self, config: Config, resolver: Resolver, *, cache_dir: Path | None = None,
                 progress: Progress | None = None) -> None:
        self.config = config
        self.resolver = resolver
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self.progress = progress or (lambda _msg: None)
        self._base_cuda: str | None = None  # the base's CUDA toolkit, read with the base

    def lock(self, *, upgrade: bool = False, upgrade_packages: tuple[str, ...] = (),
             build: BuildOptions | None = None, sbom_format: str | None = "spdx",
             signer: Signer | None = None) -> LockOutcome:
        """Resolve, choose wheels, and (given ``build``) build the environment image whose
        digests the lock records; sign the lock with ``signer``. Nothing is written unless
        every step succeeds (the signature last: a lock without it fails closed)."""
        outcome = self._lock(upgrade=upgrade, upgrade_packages=upgrade_packages, build=build,
                             sbom_format=sbom_format)
        commit = [self.config.lockfile]
        if outcome.lock.sbom is not None:  # verify checks it against the lock's sha256
            commit.append(outcome.lock.sbom.path)
        if signer is not None:
            sign_lock(self.config, signer)
            # as the config names the lock: the .sig and the Sigstore bundle beside it
            commit += [f"{self.config.lockfile}.sig", f"{self.config.lockfile}.sigstore.json"]
        return dataclasses.replace(outcome, commit=tuple(commit))

    def _lock(self, *, upgrade: bool, upgrade_packages: tuple[str, ...],
              build: BuildOptions | None, sbom_format: str | None) -> LockOutcome:
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
                # the resolver is a subprocess: work that does not need its answer overlaps;
                # it starts first, before threads that would compete for the GIL
                future = pool.submit(self.resolver.resolve, request)
                client = self._client(settings, requested, previous)
                _warm_up(target)
                scan = self._scan_code()
                kept = _kept(previous, upgrade, upgrade_packages)
                honesty = Honesty(self.resolver, request, client, requested, kept)
                honesty.read_ahead(future)
                resolution = future.result()
        pins = with_pinned_hashes(resolution.pins, requested)
        honesty.refuse_prereleases(pins)
        mixed = torch_family_problem((p.name, p.version) for p in pins)
        if mixed is not None:
            raise ResolverError(mixed, hint="pin every one of them with the same local "
                                "version label (e.g. torch==2.6.0+cu126 and "
                                "torchvision==0.21.0+cu126) from the same index")
        packages = self._packages(pins, target, client, request,
                                  _kept_builds(previous, kept, config.build_from_source))
        warnings += honesty.skipped_releases(pins)
        accelerator, mismatch = with_base(
            cuda_of_packages((p.name, p.version) for p in packages), self._base_cuda)
        warnings += [mismatch] if mismatch else []
        lock = Lock(
            inputs_digest=inputs_digest(inputs), inputs=inputs,
            target=LockTarget.from_json(_target_json(target)),
            base=base, resolver={"name": resolution.resolver,
                                 "version": resolution.resolver_version},
            indexes=tuple(self._indexes()), packages=tuple(packages),
            generator={"name": "reprolock", "version": __version__},
            accelerator=accelerator)
        self._sbom: Sbom | None = None
        if build is not None:
            lock = self._with_image(lock, build, sbom_format, previous)
        old_text = render(previous) if previous else None
        with disk_space(config.root, fix=f"free space on the disk that holds {config.root}"):
            text = self._write(lock)
        changes = tuple(describe_package_changes(previous, lock)) if previous else ()
        warnings += _code_warnings(scan, lock, self.config)
        return LockOutcome(lock, config.lock_path, text != old_text, changes, tuple(warnings))

    def _client(self, settings: IndexSettings, requested: Sequence[Requested],
                previous: Lock | None) -> IndexClient:
        from reprolock.index.simple import IndexClient

        client = IndexClient(settings, cache_dir=self.cache_dir)
        # the pages the checks after resolving read, fetched while the resolver works
        client.prefetch(r.name for r in requested)
        if previous is not None:  # a re-lock mostly keeps its pins: their files, read ahead
            client.prefetch_releases((p.name, p.version, p.hashes) for p in previous.packages)
        return client

    def _scan_code(self) -> _CodeScan:
        """The code set and its imports: read while the resolver works, to warn about
        imports that no locked package provides."""
        from reprolock.inspection.codeset import collect_code
        from reprolock.inspection.imports import scan_imports

        code = collect_code(self.config)
        return _CodeScan(code, scan_imports(self.config.root, code))

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
            extra.write_text("\n".join(pyproject_dependencies(
                self.config.root, self.config.pyproject_extras)) + "\n")
            inputs.append(extra)
        return tuple(inputs)

    def _with_image(self, lock: Lock, options: BuildOptions, sbom_format: str | None,
                    previous: Lock | None = None) -> Lock:
        from reprolock.imagebuild.builder import Builder
        from reprolock.workflows.build import make_sbom

        if sbom_format is not None:
            from reprolock.sbom.syft import SyftGenerator

            # the SBOM's view of each layer is written beside it while the layer is built
            options = dataclasses.replace(options, sbom_reads=SyftGenerator().reads())
        with disk_space(self.cache_dir, fix=cache_fix(self.cache_dir)):
            result = Builder(self.config, lock, cache_dir=self.cache_dir, options=options,
                             progress=self.progress).build(code=None)
        env = result.env
        record = ImageRecord(
            config_digest=env.config_digest, manifest_digest=env.manifest_digest,
            layers=tuple({"digest": x.blob.digest, "diffId": x.blob.diff_id, "size": x.blob.size,
                          "mediaType": x.blob.media_type, "holds": x.holds} for x in env.layers),
            compression=Compression.from_json(result.compressor.describe()),
            source_date_epoch=result.mtime,
            prefix=result.prefix, records=dict(result.records))
        lock = dataclasses.replace(lock, image=record)
        if sbom_format is not None:
            self._sbom = self._unchanged_sbom(previous, record, sbom_format) \
                or make_sbom(lock, result, fmt=sbom_format, progress=self.progress,
                             cache_dir=self.cache_dir, jobs=options.jobs)
            lock = dataclasses.replace(lock, sbom=SbomRecord(
                path=self._sbom.file_name, format=self._sbom.format,
                sha256=sha256_bytes(self._sbom.data), tool=self._sbom.tool,
                tool_version=self._sbom.tool_version))
        return lock

    def _unchanged_sbom(self, previous: Lock | None, image: ImageRecord,
                        fmt: str) -> Sbom | None:
        """The previous lock's SBOM, where it describes this very environment image: the
        same manifest, format, syft and reprolock (whose syft settings shape it), and the
        file still the one the lock records. syft on a CUDA image takes minutes."""
        from reprolock.lock.check import locked_sbom
        from reprolock.sbom.interface import Sbom
        from reprolock.sbom.syft import SyftGenerator

        old = previous.sbom if previous is not None else None
        if previous is None or old is None or previous.image is None \
                or previous.image.manifest_digest != image.manifest_digest \
                or old.format != fmt or previous.generator.get("version") != __version__:
            return None
        try:
            data = locked_sbom(self.config.root, previous)
            if SyftGenerator().version() != old.tool_version:
                return None
        except ReprolockError:
            return None  # missing, changed or no syft: made anew, which says why if it fails
        self.progress("SBOM unchanged: the environment image is the one the lock records")
        return Sbom(data, old.format, old.tool, old.tool_version, frozenset())

    def _previous(self) -> Lock | None:
        try:
            return read_lock(self.config.lock_path, cache_dir=self.cache_dir)
        except LockFileError:
            return None  # a missing or broken lock is simply replaced

    def _base(self, warnings: list[str]) -> tuple[BaseImage, Target]:
        platform = Platform.parse(self.config.platform)
        self.progress(f"reading base image {self.config.base}")
        with open_source(self.config.base, root=self.config.root) as source:
            image = source.resolve(platform)
            check_platform(image, platform)
            facts = probe(source, image, cache_dir=self.cache_dir)
        if not source.pinned:
            warnings.append(unpinned_base_warning(self.config.base, image))
        self._base_cuda = base_cuda(image.env)
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

    def _indexes(self) -> list[dict[str, Any]]:
        index = self.config.index
        found: list[dict[str, Any]] = []
        if not index.no_index:
            found.append({"kind": "index", "url": redact(index.url or "https://pypi.org/simple")})
            found += [{"kind": "extra-index", "url": redact(u)} for u in index.extra_urls]
        found += [{"kind": "find-links", "url": redact(u)} for u in index.find_links]
        found += [{"kind": "named", "url": redact(n.url), "name": n.name,
                   "packages": list(n.packages)} for n in index.named]
        return found

    def _packages(self, pins: tuple[Pin, ...], target: Target, client: IndexClient,
                  request: ResolveRequest,
                  kept_builds: dict[tuple[str, str], tuple[BuildRequirement, ...]],
                  ) -> list[Package]:
        from reprolock.index.simple import DistFile
        from reprolock.index.wheels import wheel_modules

        self.progress(f"finding artifacts of {len(pins)} packages")
        files = client.files_for((p.name, p.version, p.hashes) for p in pins)
        _check_named_sources(pins, files, client.settings)
        for pin in pins:
            _check_listed(pin, files[(pin.name, pin.version)], client)
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
        wanted = [p for p in pins if p.name in self.config.build_from_source]
        if not wanted:
            return {}  # before the imports: the builder and requests cost every lock time
        from reprolock.imagebuild.artifacts import ArtifactStore
        from reprolock.imagebuild.sdist import SdistBuilder
        from reprolock.imagebuild.sources import SourceLocker

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
        unhashed = [f for f in files if f.sha256 is None and f.url is not None]
        best = best_wheel([*known, *unhashed], target)
        if best is not None and best.sha256 is None:
            return self._hashed(pin, best, frozenset(hashes))
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

    def _hashed(self, pin: Pin, dist: DistFile, accepted: frozenset[str]) -> DistFile:
        """``dist``, which its index serves with no hash, downloaded into the artifact
        cache and hashed: it must be one of the files the resolver pinned."""
        from reprolock.imagebuild.artifacts import ArtifactStore

        assert dist.url is not None
        self.progress(f"hashing {dist.filename} (its index serves no hash)")
        store = ArtifactStore(self.cache_dir, project=self.config.root,
                              credentials=index_credentials(self.config))
        path, sha256 = store.download_unhashed(dist.url, dist.filename, accepted)
        return dataclasses.replace(dist, sha256=sha256, size=path.stat().st_size,
                                   hash_computed=True)

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
        return Artifact(dist.filename, dist.sha256, dist.size, url=redact(dist.url or ""),
                        hash_computed=dist.hash_computed)

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


def sign_lock(config: Config, signer: Signer) -> Path:
    """Sign the lock once, written twice: ``reprolock.lock.json.sig`` (cosign's older
    verify-blob format, returned) and ``reprolock.lock.json.sigstore.json`` (a Sigstore
    bundle v0.3, what cosign v3 reads)."""
    from reprolock.signing.bundle import sign_blob

    if not config.lock_path.is_file():
        raise LockFileError(f"no lock at {config.lock_path}", hint="run 'reprolock lock' first")
    return sign_blob(config.lock_path, signer).signature


def export_lock(config: Config, fmt: str, *, dest_dir: Path) -> str:
    """The lock as hash-pinned requirements or a PEP 751 pylock.toml, paths relative to
    ``dest_dir``."""
    from reprolock.lock.export import FORMATS, export

    if fmt not in FORMATS:
        raise UsageError.not_known("--format", fmt, FORMATS)
    return export(read_lock(config.lock_path, cache_dir=default_cache_dir()), fmt,
                  project=config.root, dest_dir=dest_dir)


def _code_warnings(scan: _CodeScan, lock: Lock, config: Config) -> list[str]:
    from reprolock.inspection.imports import unprovided

    warnings = []
    provided = {m: p.name for p in lock.packages for m in p.modules}
    missing = unprovided(scan.imports, provided)
    warnings += _missing_warnings(missing, config) if missing else []
    for path, line, msg in scan.imports.syntax_errors:
        warnings.append(f"{path}:{line}: cannot parse: {msg}")
    untracked = scan.code.untracked
    if untracked:
        warnings.append(f"{len(untracked)} untracked files will not be in the image (first: "
                        f"{untracked[0]}); git add them or ignore them")
    warnings.extend(scan.code.warnings)
    return warnings


def _missing_warnings(missing: Sequence[Unprovided], config: Config) -> list[str]:
    """One warning per import no locked package provides, naming the extra of
    pyproject.toml that would provide it, if one does."""
    from packaging.utils import canonicalize_name

    from reprolock.inspection.imports import distribution_for
    from reprolock.inspection.project import extras_naming

    naming = extras_naming(config.root)
    warnings = []
    for item in missing:
        name = canonicalize_name(distribution_for(item.module))
        extras = naming.get(name, ())
        fix = (f"{name} is in pyproject.toml's extra{'s' if len(extras) > 1 else ''} "
               f"{', '.join(map(repr, extras))}: add "
               f"{'one of them' if len(extras) > 1 else repr(extras[0])} to dependencies.extras"
               f"{'' if config.pyproject_dependencies else ' (with dependencies.pyproject = true)'}"
               if extras else "add its distribution to your requirements")
        warnings.append(f"{item.first.path}:{item.first.line}: module {item.module!r} is "
                        f"imported but no locked package provides it; {fix}")
    return warnings


def _kept_builds(previous: Lock | None, kept: Mapping[str, str],
                 names: Sequence[str]) -> dict[tuple[str, str], tuple[BuildRequirement, ...]]:
    """The build requirements the previous lock pinned, by (package, sdist sha256), for
    the packages that keep their pins."""
    if previous is None:
        return {}
    return {(p.name, p.source.sdist.sha256): p.source.requires for p in previous.packages
            if p.source is not None and p.name in names and p.name in kept}


def _check_listed(pin: Pin, files: list[DistFile], client: IndexClient) -> None:
    """Some file reprolock read carries a hash the resolver pinned, or carries none (it
    is hashed on download): else the index answered reprolock otherwise than the
    resolver, and "no wheel for the target" would name the wrong cause."""
    hashes = {h.removeprefix("sha256:") for h in pin.hashes}
    if not hashes or any(f.sha256 in hashes or f.sha256 is None for f in files):
        return
    pages = [f"{redact(u).rstrip('/')}/{pin.name}/" for u in client.indexes(pin.name)]
    pages += [redact(u) for u in client.settings.find_links] if not client.settings.named_for(
        pin.name) else []
    read = "; ".join(f"{f.filename} sha256:{f.sha256}" for f in files[:4]) or "no file at all"
    raise ArtifactError(
        f"the resolver pinned {pin.name}=={pin.version} to sha256:"
        f"{', sha256:'.join(sorted(hashes))}, but no file of that release that reprolock read "
        f"from {', '.join(pages) or 'the index'} carries it (it read {read})",
        hint="the page changed between the two reads, or the index answers one client "
        "otherwise than another: run lock again; if it repeats, tell the index's operators")


def _check_named_sources(pins: Iterable[Pin], files: Mapping[tuple[str, str], list[DistFile]],
                         settings: IndexSettings) -> None:
    """A package pinned to a named index must have been resolved to files of that index:
    the files were looked up there alone, so a pin none of whose hashes (or hashless
    files) is among them came from somewhere else."""
    for pin in pins:
        named = settings.named_for(pin.name)
        if named is None:
            continue
        hashes = {h.removeprefix("sha256:") for h in pin.hashes}
        if not any(f.sha256 is None or f.sha256 in hashes for f in files[(pin.name, pin.version)]):
            raise ArtifactError(
                f"{pin.name}=={pin.version} was resolved to files that its named index "
                f"{named.name} ({redact(named.url)}) does not serve: it came from another "
                "index, which index.named forbids", hint="check that the named index serves "
                f"{pin.name} (its URL and credentials), then lock again; if the resolver "
                "ignored the pin, report it")


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


__all__ = ["LockOutcome", "Locker"]
