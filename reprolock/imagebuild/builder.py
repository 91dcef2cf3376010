"""Assemble the image from the lock, without a daemon and without running a container.

    >>> builder = Builder(config, lock, cache_dir=default_cache_dir())   # doctest: +SKIP
    >>> result = builder.build(code=collect_code(config))               # doctest: +SKIP

Layers, bottom to top: the base image's layers (byte for byte, by digest), the virtual
environment's skeleton, one layer per large package, one shared layer for the small
ones, and the code. The environment image is the same without the code layer and
without the labels that name the code; the lock records its digests.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import hashlib
import json
import os
import posixpath
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprolock._internal.files import atomic_write_text
from reprolock._internal.jsonio import read_json
from reprolock._internal.memory import return_large_buffers_to_the_system
from reprolock.config import Config
from reprolock.errors import ArtifactError, ImageSourceError, ReprolockError
from reprolock.image.interface import Descriptor, ImageSource, ResolvedImage
from reprolock.image.reference import open_source
from reprolock.imagebuild.artifacts import ArtifactStore
from reprolock.imagebuild.install import InstalledDist, VenvLayout, plan_wheel, venv_entries
from reprolock.imagebuild.sbomview import ViewWriter, view_index
from reprolock.imagebuild.store import LayerCache, cache_key, open_cache
from reprolock.inspection.codeset import CodeSet
from reprolock.lock.model import Lock, Package
from reprolock.oci.blobstore import BlobStore
from reprolock.oci.canonical import canonical_json
from reprolock.oci.compress import Compressor
from reprolock.oci.contract import (
    BASE_DIGEST_LABEL,
    DEFAULT_PREFIX,
    ENV_LABEL,
    LABEL_PREFIX,
    config_bytes,
    image_config,
    image_env,
    image_labels,
    iso_time,
)
from reprolock.oci.media import OCI_CONFIG, OCI_MANIFEST, oci_layer_type
from reprolock.oci.model import Image, Layer, LayerBlob
from reprolock.oci.tarball import DEFAULT_MTIME, Entry, write_layer
from reprolock.resolver.interface import index_credentials, index_settings
from reprolock.runtime.basefiles import cached_base_record
from reprolock.runtime.embed import image_files
from reprolock.sbom.interface import CatalogReads
from reprolock.target import Platform

LAYOUT_VERSION = 2  # bump when a change to what goes into layers must invalidate the cache
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    compressor: Compressor | None = None  # None: the one the lock records, else gzip
    mtime: int | None = None  # None: SOURCE_DATE_EPOCH, else the lock's, else 1980-01-01
    prefix: str = DEFAULT_PREFIX
    own_layer_bytes: int = 1 << 20  # a wheel at least this big gets a layer of its own
    jobs: int = max(1, os.cpu_count() or 1)
    # the SBOM generator's reads: each layer built also gets its view (sbomview.py)
    sbom_reads: CatalogReads | None = None


@dataclass(frozen=True)
class BuildResult:
    env: Image
    full: Image | None
    mtime: int
    compressor: Compressor
    prefix: str
    blobs: BlobStore
    records: Mapping[str, str]  # distribution name -> "sha256:" of its installed RECORD
    # the SBOM views written beside the layers this build made: diff_id -> (view, bytes left out)
    views: Mapping[str, tuple[str, int]] = field(default_factory=dict)


def locked_compressor(lock: Lock) -> Compressor:
    """The compressor the lock's environment image was made with, so that a build of the
    same lock gives the manifest digests the lock records; gzip when it records none."""
    if lock.image is not None:
        record = lock.image.compression
        return Compressor.parse(record.spec, block_size=record.block_size,
                                wheel_deflate=record.wheel_deflate)
    return Compressor.parse("gzip")


def source_date_epoch(lock: Lock, explicit: int | None) -> int:
    if explicit is not None:
        return explicit
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env and env.isdigit():
        return int(env)
    if lock.image is not None:
        return lock.image.source_date_epoch
    return DEFAULT_MTIME


class Builder:
    def __init__(self, config: Config, lock: Lock, *, cache_dir: Path,
                 options: BuildOptions | None = None, progress: Progress | None = None,
                 lock_bytes: bytes | None = None) -> None:
        self.config = config
        self.lock = lock
        self.options = options or BuildOptions()
        self.progress = progress or (lambda _m: None)
        self.cache_dir = cache_dir
        self.blobs = open_cache(cache_dir)
        self.layers = LayerCache(cache_dir, self.blobs)
        self.mtime = source_date_epoch(lock, self.options.mtime)
        self.compressor = self.options.compressor or locked_compressor(lock)
        self.lock_bytes = lock_bytes
        self.lock_digest = (None if lock_bytes is None
                            else "sha256:" + hashlib.sha256(lock_bytes).hexdigest())
        self.records: dict[str, str] = {}
        self.views: dict[str, tuple[str, int]] = {}
        self._dists: dict[str, InstalledDist] = {}  # package name -> its planned install
        self._wheels: dict[str, Path] = {}  # package name -> its checked wheel in the cache
        self._artifacts: ArtifactStore | None = None
        self._base_files: dict[str, Any] | None = None
        self.venv = VenvLayout(
            prefix=self.options.prefix,
            python_minor=lock.target.python_minor,
            python_version=lock.base.python_version,
            base_interpreter=lock.base.python_path)

    # -- the whole build ---------------------------------------------------------------
    def build(self, code: CodeSet | None) -> BuildResult:
        return_large_buffers_to_the_system()
        with _no_gc():
            return self._build(code)

    def _build(self, code: CodeSet | None) -> BuildResult:
        # The base's record checks every base layer's blob digest and diff_id while it
        # notes the base's startup files (kept in the cache by the base's digest). A cold
        # read of a large base takes seconds, mostly in zlib and hashing, which release
        # the GIL: it runs beside the wheels, and no image is made before it has passed.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            checked_base = pool.submit(self._base_record)
            base, base_layers = self._base()
            plans = self._plan()
            cached = self._cached(plans)
            # a wheel is read (fetched, hashed) only for a layer the cache lacks: a
            # code-only rebuild of a CUDA image skips gigabytes of them
            self._fetch_artifacts([pkg for plan in plans if cached[plan.key] is None
                                   for pkg in plan.packages])
            self._install_plans(plans)
            dep_layers = self._build_layers(plans, cached)
            self._dists.clear()
            checked_base.result()
        env = self._image(base, base_layers, dep_layers, code=None)
        full = None
        if code is not None:
            # the code layer carries the installed RECORD digests: it comes after the rest
            env_vars = dict(line.split("=", 1) for line in self._env(base))
            code_layers = self._build_layers([self._code_plan(code, env_vars)])
            full = self._image(base, base_layers, [*dep_layers, *code_layers], code=code,
                               env_config=env.config_digest)
        return BuildResult(env, full, self.mtime, self.compressor, self.options.prefix,
                           self.blobs, dict(sorted(self.records.items())), dict(self.views))

    # -- base --------------------------------------------------------------------------
    def _base(self) -> tuple[ResolvedImage, list[Layer]]:
        platform = Platform.parse(self.lock.target.platform)
        self.progress(f"base {self.lock.base.reference}")
        # the blobs copied here are named by the digests that _build's base record
        # checks together with their diff_ids
        with open_source(self.lock.base.reference, root=self.config.root) as source:
            image = source.resolve(platform)
            if image.identity != self.lock.base.digest:
                raise ImageSourceError(
                    f"base image {self.lock.base.reference} is now {image.identity}, but the "
                    f"lock records {self.lock.base.digest}",
                    hint="restore the locked base image, or run 'reprolock lock' to lock the "
                    "new one")
            layers = [self._base_layer(source, desc, diff_id)
                      for desc, diff_id in zip(image.layers, image.diff_ids, strict=True)]
        return image, layers

    def _base_layer(self, source: ImageSource, desc: Descriptor, diff_id: str) -> Layer:
        if not self.blobs.valid(desc.digest):
            with source.open_blob(desc.digest) as stream:
                if not self.blobs.copy_in(stream, desc.digest):
                    raise ImageSourceError(
                        f"base layer {desc.digest} of {self.lock.base.reference} does not match "
                        "its digest", hint="the base image is corrupt; fetch it again")
        return Layer(LayerBlob(desc.digest, diff_id, desc.size, oci_layer_type(desc.media_type)),
                     "base image layer")

    # -- dependencies ------------------------------------------------------------------
    def _store(self) -> ArtifactStore:
        from reprolock.imagebuild.sdist import SdistBuilder

        if self._artifacts is None:
            self._artifacts = ArtifactStore(self.cache_dir, project=self.config.root,
                                            credentials=index_credentials(self.config),
                                            sdists=SdistBuilder(index_settings(self.config)))
        return self._artifacts

    def _fetch_artifacts(self, packages: Sequence[Package]) -> None:
        """Each wheel into the cache, checked against the lock's sha256: ``self._wheels``."""
        todo = sorted((p for p in packages if p.name not in self._wheels), key=lambda p: p.name)
        if not todo:
            return
        self.progress(f"fetching {len(todo)} wheels (checked against the lock's sha256)")
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            paths = list(pool.map(self._store().get, todo))
        self._wheels.update({p.name: path for p, path in zip(todo, paths, strict=True)})

    def _wheel(self, pkg: Package) -> Path:
        self._fetch_artifacts([pkg])
        return self._wheels[pkg.name]

    def _plan(self) -> list[_Plan]:
        comp = self.compressor.describe()
        common = {"v": LAYOUT_VERSION, "venv": self.venv.__dict__, "mtime": self.mtime,
                  "compressor": comp}
        plans = [_Plan("venv", "virtual environment", (), cache_key(kind="venv", **common))]
        big = [p for p in self._packages() if (p.artifact.size or self._wheel(p).stat().st_size)
               >= self.options.own_layer_bytes]
        small = [p for p in self._packages() if p not in big]
        for pkg in big:
            plans.append(_Plan("package", f"{pkg.name} {pkg.version}", (pkg,),
                               cache_key(kind="package", wheel=pkg.artifact.sha256, **common)))
        if small:
            holds = ", ".join(f"{p.name} {p.version}" for p in small)
            plans.append(_Plan("packages", holds, tuple(small),
                               cache_key(kind="packages", wheels=[p.artifact.sha256 for p in small],
                                         **common)))
        return plans

    def _packages(self) -> list[Package]:
        return sorted(self.lock.packages, key=lambda p: p.name)

    def _install_plans(self, plans: Sequence[_Plan]) -> None:
        """Refuse two wheels that put something at one path, whether their layers are
        cached or not (layers cached from two other locks meet here): in one layer the tar
        would hold it twice, across layers the upper one would silently win."""
        self._dists.clear()
        owners = {e.name: "the virtual environment" for e in venv_entries(self.venv)
                  if e.kind != "dir"}
        for pkg in (pkg for plan in plans for pkg in plan.packages):
            for name in self._installed_names(pkg):
                owner = owners.setdefault(name, pkg.artifact.filename)
                if owner != pkg.artifact.filename:
                    raise _clash(owner, pkg.artifact.filename, name)
        _refuse_files_as_directories(owners, {e.name for e in venv_entries(self.venv)
                                              if e.kind == "dir"})

    def _installed_names(self, pkg: Package) -> list[str]:
        """The paths ``pkg``'s wheel installs. Planning a large wheel takes seconds, so
        the list is kept in the cache by wheel digest and layout; a plan made here is
        kept for its layer."""
        key = cache_key(kind="installed", v=LAYOUT_VERSION, wheel=pkg.artifact.sha256,
                        venv=self.venv.__dict__)
        path = self.cache_dir / "installed" / f"{key}.json"
        with contextlib.suppress(ReprolockError):
            names = read_json(path, want_object=False)
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                return names
        dist = self._dists[pkg.name] = self._plan_wheel(pkg)
        names = [e.name for e in dist.entries if e.kind != "dir"]
        with contextlib.suppress(OSError):  # a read-only cache only costs time
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(names))
        return names

    def _plan_wheel(self, pkg: Package) -> InstalledDist:
        wheel = self._wheel(pkg)  # checked against the lock's sha256, which the note is for
        return plan_wheel(wheel, self.venv, filename=pkg.artifact.filename,
                          record_checked=self._store().record_checked(pkg.artifact))

    def code_layer(self, code: CodeSet, env: Mapping[str, str]) -> LayerBlob:
        """The code layer that :meth:`build` puts on the locked environment for ``code``,
        whose declared variables are ``env``: from the cache, else written (code only,
        seconds at most). 'reprolock run' compares an image's last diff_id with it, since
        the environment config check alone leaves the code layer's content open."""
        assert self.lock.image is not None
        self.records = dict(self.lock.image.records)
        with _no_gc():
            [layer] = self._build_layers([self._code_plan(code, env)])
        return layer.blob

    def _code_plan(self, code: CodeSet, env: Mapping[str, str]) -> _Plan:
        self._code = code
        self._embedded = [Entry(f.path, "file", data=f.data, executable=f.executable)
                          for f in image_files(lock_bytes=self.lock_bytes or b"", code=code,
                                               workdir=self.config.image.workdir,
                                               prefix=self.options.prefix,
                                               records=dict(sorted(self.records.items())),
                                               env=env, base=self._base_record())]
        key = cache_key(kind="code", v=LAYOUT_VERSION, tree=code.tree_digest,
                        workdir=self.config.image.workdir, mtime=self.mtime,
                        compressor=self.compressor.describe(),
                        embedded=[(e.name, e.executable,
                                   hashlib.sha256(e.data or b"").hexdigest())
                                  for e in self._embedded])
        return _Plan("code", f"code {code.tree_digest}", (), key)

    def _base_record(self) -> dict[str, Any]:
        """The base's startup hooks and bytecode, for the runtime check to vouch for."""
        if self._base_files is None:
            self._base_files = cached_base_record(self.config.root, self.lock, self.cache_dir)
        return self._base_files

    # -- layers ------------------------------------------------------------------------
    def _cached(self, plans: Sequence[_Plan]) -> dict[str, tuple[LayerBlob, dict[str, str]] | None]:
        """Each plan's layer from the cache, or None. Each entry is checked (hashed) once:
        here, not again after the build; on every core, as a code-only rebuild of a CUDA
        image re-hashes gigabytes of them."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.options.jobs) as pool:
            found = list(pool.map(self.layers.get, [plan.key for plan in plans]))
        return {plan.key: entry for plan, entry in zip(plans, found, strict=True)}

    def _build_layers(self, plans: Sequence[_Plan],
                      cached: Mapping[str, tuple[LayerBlob, dict[str, str]] | None] | None = None,
                      ) -> list[Layer]:
        found = self._cached(plans) if cached is None else cached
        blobs: dict[str, LayerBlob | None] = {}
        for plan in plans:
            entry = found[plan.key]
            blobs[plan.key] = None if entry is None else entry[0]
            if entry is not None:
                self.records.update(entry[1])
        todo = [p for p in plans if blobs[p.key] is None]
        if todo:
            self.progress(f"building {len(todo)} of {len(plans)} layers "
                          f"({self.compressor.name}, {self.options.jobs} jobs)")
        # biggest first, so the long ones start early on the available cores
        order = sorted(todo, key=lambda p: -sum(self._size(pkg) for pkg in p.packages))
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.options.jobs) as pool:
            futures = {pool.submit(self._build_layer, plan): plan for plan in order}
            try:
                for future in concurrent.futures.as_completed(futures):
                    plan, (blob, records) = futures[future], future.result()
                    self.layers.put(plan.key, blob, records)
                    self.records.update(records)
                    blobs[plan.key] = blob
                    self.progress(f"  layer {_short(plan.holds)}: {blob.size / 1e6:.1f} MB "
                                  f"({time.monotonic() - started:.1f} s)")
            except BaseException:
                for future in futures:  # one layer failed: the build has; start no others
                    future.cancel()
                raise
        return [Layer(built, plan.holds) for plan in plans if (built := blobs[plan.key])]

    def _size(self, pkg: Package) -> int:
        return pkg.artifact.size or 0

    def _build_layer(self, plan: _Plan) -> tuple[LayerBlob, dict[str, str]]:
        entries, records = self._entries(plan)
        dest = self.blobs.temp_path()
        reads = self.options.sbom_reads
        view = None if reads is None or plan.kind == "code" else ViewWriter(
            self.blobs, reads, view_index(self.cache_dir, reads))
        try:
            # into the cache, where every read checks the digest: no fsync needed
            blob = write_layer(entries, dest, compressor=self.compressor, mtime=self.mtime,
                               durable=False, threads=self.options.jobs, view=view)
            self.blobs.adopt(dest, blob.digest)
            for pkg in plan.packages:  # every member streamed and matched RECORD
                self._store().note_record_checked(pkg.artifact)
            if view is not None:
                self.views[blob.diff_id] = (view.commit(blob.diff_id), view.dropped)
        finally:
            dest.unlink(missing_ok=True)
            if view is not None:
                view.discard()
        return blob, records

    def _entries(self, plan: _Plan) -> tuple[list[Entry], dict[str, str]]:
        """What goes into the layer; wheel contents are read only while it is written."""
        if plan.kind == "code":
            return [*self._code_entries(), *self._embedded], {}
        if plan.kind == "venv":
            return venv_entries(self.venv), {}
        # checked for clashes by _install_plans, which may have planned them already
        dists = [self._dists.pop(pkg.name) if pkg.name in self._dists else self._plan_wheel(pkg)
                 for pkg in plan.packages]
        entries = [e for dist in dists for e in dist.entries]
        return entries, {_dist_key(p.name): d.record_sha256
                         for p, d in zip(plan.packages, dists, strict=True)}

    def _code_entries(self) -> list[Entry]:
        workdir = self.config.image.workdir.strip("/")
        entries = []
        for f in self._code.files:
            name = f"{workdir}/{f.path}"
            if f.link_target is not None:
                _check_link(f.path, f.link_target)
                entries.append(Entry(name, "symlink", link=f.link_target))
            else:
                entries.append(Entry(name, "file", source=self.config.root / f.path,
                                     executable=f.executable))
        return entries

    # -- config and manifest -----------------------------------------------------------
    def _image(self, base: ResolvedImage, base_layers: list[Layer], ours: Sequence[Layer],
               *, code: CodeSet | None, env_config: str | None = None) -> Image:
        layers = [*base_layers, *ours]
        config = self._config(base, layers, ours, code)
        if env_config is not None:
            # the full image names its environment image, whose config digest the lock
            # records: 'reprolock run' picks the image of this lock by it
            config["config"]["Labels"][ENV_LABEL] = env_config
        config_data = config_bytes(config)
        config_digest = self.blobs.put_bytes(config_data)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                       "size": len(config_data)},
            "layers": [{"mediaType": x.blob.media_type, "digest": x.blob.digest,
                        "size": x.blob.size} for x in layers],
        }
        if code is not None:
            manifest["annotations"] = {BASE_DIGEST_LABEL: self.lock.base.digest}
        manifest_bytes = canonical_json(manifest)
        digest = self.blobs.put_bytes(manifest_bytes)
        return Image(config_digest, digest, len(manifest_bytes), tuple(layers), len(base_layers))

    def _config(self, base: ResolvedImage, layers: Sequence[Layer], ours: Sequence[Layer],
                code: CodeSet | None) -> dict[str, Any]:
        return image_config(base.config, settings=self.config.image, env=self._env(base),
                            labels=self._labels(code),
                            diff_ids=[x.blob.diff_id for x in layers],
                            holds=[layer.holds for layer in ours], created=iso_time(self.mtime),
                            architecture=self.lock.base.architecture)

    def _env(self, base: ResolvedImage) -> list[str]:
        env = image_env(base.env, self.options.prefix, self.config.image.env,
                        self.lock.accelerator)
        return [f"{k}={v}" for k, v in env.items()]

    def _labels(self, code: CodeSet | None) -> dict[str, str]:
        if code is None:
            return image_labels(self.lock)
        return image_labels(self.lock, code_tree=code.tree_digest, lock_digest=self.lock_digest,
                            revision=code.git.commit if code.git else None)


@dataclass(frozen=True)
class _Plan:
    kind: str  # venv, package, packages, code
    holds: str
    packages: tuple[Package, ...]
    key: str


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The build makes hundreds of thousands of small, acyclic objects (entries, headers);
    the cycle collector would walk them again and again for nothing (a quarter of a cold
    build's time, measured)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _dist_key(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _clash(first: str, second: str, path: str) -> ArtifactError:
    return ArtifactError(
        f"{first} and {second} both install /{path}: in the image one would silently "
        "replace the other",
        hint="two locked packages clash; remove one of them from the requirements, or pin "
        "versions that do not overlap")


def _refuse_files_as_directories(owners: Mapping[str, str], venv_dirs: set[str]) -> None:
    """A file where a wheel (the same one, or another) has a directory (``a/b`` and
    ``a/b/c``), or where the virtual environment has one (site-packages): the tar would
    hold both, and what an engine unpacks is not what the lock describes."""
    done: set[tuple[str, str]] = set()  # (directory, owner): it and its parents are checked
    for name, owner in owners.items():
        if name in venv_dirs:
            raise _clash("the virtual environment", owner, f"{name} (as a directory, and "
                         "as a file)")
        parent = posixpath.dirname(name)
        while parent and (parent, owner) not in done:
            done.add((parent, owner))
            other = owners.get(parent)
            if other == owner:
                raise ArtifactError(f"{owner} installs /{parent} as a file and as a "
                                    f"directory (of {name})", hint="the wheel is broken or "
                                    "malicious; do not use it")
            if other is not None:
                raise _clash(other, owner, f"{parent} (as a file, and as a directory of {name})")
            parent = posixpath.dirname(parent)


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _check_link(path: str, target: str) -> None:
    """A code symlink must stay inside the code: outside it, it names nothing in the image."""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise ArtifactError(
            f"code file {path} is a symbolic link to {target}, outside the project",
            hint="copy the file into the project, or exclude the link in [code] exclude")


# re-exported: the workflows import them from here
__all__ = ["DEFAULT_PREFIX", "LABEL_PREFIX", "BuildOptions", "BuildResult", "Builder", "Image",
           "Layer", "LayerBlob", "image_env", "iso_time", "locked_compressor", "write_layer"]
