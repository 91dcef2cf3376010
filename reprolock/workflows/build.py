"""The build workflow: the image from a fresh lock and the code checkout, every output
written, the SBOM and the signed provenance (SLSA) attached."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reprolock._internal.cache import default_cache_dir
from reprolock._internal.files import atomic_write_bytes, sha256_file
from reprolock.config import Config
from reprolock.errors import LockFileError, SbomError
from reprolock.imagebuild.store import cache_fix, disk_space
from reprolock.lock.io import read_lock_bytes
from reprolock.lock.model import Lock
from reprolock.oci.contract import iso_time

if TYPE_CHECKING:
    from reprolock.imagebuild.builder import BuildOptions, BuildResult, Image
    from reprolock.inspection.codeset import CodeSet
    from reprolock.output.interface import Output, Written
    from reprolock.output.referrers import Referrer
    from reprolock.sbom.interface import Sbom, SbomGenerator
    from reprolock.signing.interface import Signer

Progress = Callable[[str], None]


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
    from reprolock.imagebuild.builder import Builder
    from reprolock.inspection.codeset import collect_code
    from reprolock.lock.check import check_lock
    from reprolock.oci.media import SIGSTORE_BUNDLE
    from reprolock.output.referrers import DSSE_MEDIA_TYPE, make_referrer

    cache = cache_dir if cache_dir is not None else default_cache_dir()
    lock, lock_bytes = read_lock_bytes(config.lock_path, cache_dir=cache)
    freshness = check_lock(config, cache_dir=cache, lock=lock)
    if not freshness.fresh:
        raise LockFileError(f"{config.lockfile} is stale: {'; '.join(freshness.changes)}",
                            hint="run 'reprolock lock' first, then build")
    code = collect_code(config)
    warnings = []
    if code.untracked:
        warnings.append(f"{len(code.untracked)} untracked files are not in the image "
                        f"(first: {code.untracked[0]}); git add them or ignore them")
    warnings.extend(code.warnings)
    with disk_space(cache, fix=cache_fix(cache)):
        builder = Builder(config, lock, cache_dir=cache, options=options, progress=progress,
                          lock_bytes=lock_bytes)
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
        signed = _write_provenance(config, _provenance(config, lock, code, image, signer),
                                   signer, attestation, progress)
        with disk_space(cache, fix=cache_fix(cache)):
            referrers.extend(make_referrer(result.blobs, image, data=data, media_type=kind,
                                           created=iso_time(result.mtime))
                             for data, kind in zip(signed, (DSSE_MEDIA_TYPE, SIGSTORE_BUNDLE),
                                                     strict=True))
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
    return lock.image is not None and lock.image.matches(
        result.env.config_digest, result.env.manifest_digest, result.compressor.describe())


def _env_mismatch(lock: Lock, result: BuildResult) -> str:
    if lock.image is None:
        return ("the lock records no environment image (it was made with --no-build); run "
                "'reprolock lock' to record it")
    return (f"the environment image built now ({result.env.config_digest}) is not the one the "
            f"lock records ({lock.image.config_digest}); 'reprolock verify' will report the "
            "difference")


SBOM_SOURCE_NAME = "reprolock-environment"


def make_sbom(lock: Lock, result: BuildResult, *, fmt: str, progress: Progress,
              cache_dir: Path | None = None, jobs: int = 1) -> Sbom:
    """The environment image's SBOM by syft; every locked package must be in it. With a
    cache, syft is given a view of the image without the big files its catalogers never
    open (:mod:`reprolock.imagebuild.sbomview`), and names the real image's digests."""
    from packaging.utils import canonicalize_name

    from reprolock.sbom.syft import SyftGenerator

    generator = SyftGenerator()
    reads = generator.reads() if cache_dir is not None else None
    image, rename = result.env, None
    if reads is not None and cache_dir is not None:
        from reprolock.imagebuild.sbomview import sbom_view

        view = sbom_view(result.env, result.blobs, reads, cache_dir=cache_dir, jobs=jobs,
                         fresh=result.views)
        image, rename = view.image, view.rename
        progress(f"SBOM of the environment image (syft; {view.dropped_bytes / 1e6:,.0f} MB "
                 "of files its catalogers do not open left out)")
    else:
        progress("SBOM of the environment image (syft, the whole image)")
    sbom = _syft_on(generator, image, result, fmt=fmt, rename=rename)
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


def _syft_on(generator: SbomGenerator, image: Image, result: BuildResult, *, fmt: str,
             rename: dict[str, str] | None) -> Sbom:
    from reprolock.output.layout_writer import LayoutOutput

    with tempfile.TemporaryDirectory(prefix="reprolock-sbom-") as tmp:
        layout = Path(tmp) / "layout"
        fix = (f"free space on the disk that holds {tempfile.gettempdir()}, or point TMPDIR "
               "at a disk with room")
        LayoutOutput(layout, "environment", fix=fix).write(image, result.blobs, tag=None,
                                                            progress=lambda _m: None)
        return generator.generate(layout, name=SBOM_SOURCE_NAME,
                                  image_digest=result.env.manifest_digest,
                                  created=iso_time(result.mtime), fmt=fmt, rename=rename)


def _purl_key(purl: str, canonicalize: Callable[[str], str]) -> tuple[str, str]:
    body = purl.removeprefix("pkg:pypi/").split("?", 1)[0].split("#", 1)[0]
    name, _, version = body.partition("@")
    from urllib.parse import unquote

    return canonicalize(unquote(name)), unquote(version)


def _sbom_referrer(config: Config, lock: Lock, result: BuildResult, image: Image) -> Referrer:
    """The locked SBOM, checked against the lock's digest, as an artifact of the image."""
    from reprolock.lock.check import locked_sbom
    from reprolock.output.referrers import make_referrer
    from reprolock.sbom.interface import FORMATS

    assert lock.sbom is not None
    data = locked_sbom(config.root, lock)
    return make_referrer(result.blobs, image, data=data,
                         media_type=FORMATS[lock.sbom.format].media_type,
                         created=iso_time(result.mtime))


def _write_provenance(config: Config, envelope: dict[str, object], signer: Signer,
                      attestation: Path | None, progress: Progress) -> tuple[bytes, bytes]:
    """The signed provenance as a DSSE file and a Sigstore bundle beside it
    (``.reprolock/build.dsse.json``, ``.reprolock/build.sigstore.json``); both returned,
    to attach."""
    from reprolock.signing.bundle import write_envelope_bundle

    path = attestation or config.root / ".reprolock" / "build.dsse.json"
    data = (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()
    with disk_space(path, fix=f"free space on the disk that holds {path}"):
        atomic_write_bytes(path, data)
        bundle = write_envelope_bundle(envelope, path, signer)
    progress(f"signed build provenance written to {path} (and as a Sigstore bundle, "
             f"{bundle.name})")
    return data, bundle.read_bytes()


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
