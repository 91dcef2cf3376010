"""``reprolock verify`` for CI: the lock is valid, fresh, signed (with ``--key`` or
``require-signature``), rebuilds to the digests it records, and its SBOM is as locked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprolock._internal.cache import default_cache_dir
from reprolock._internal.files import sha256_file
from reprolock.config import Config
from reprolock.errors import NotReproducibleError, VerificationError
from reprolock.lock.check import check_lock
from reprolock.lock.io import read_lock
from reprolock.lock.model import LOCK_VERSION, Lock
from reprolock.verify.diff import layer_changes
from reprolock.verify.report import Check, Report, attempt

if TYPE_CHECKING:
    from reprolock.signing.dsse import VerifiedEnvelope
    from reprolock.signing.keys import TrustedKey
    from reprolock.verify.keyless import KeylessIdentity

RELOCK = "run 'reprolock lock' and commit the lock"
Progress = Callable[[str], None]


def lock_checks(config: Config, cache: Path) -> tuple[Lock, list[Check]]:
    """Valid (an unreadable or invalid lock raises: exit 2) and fresh."""
    lock = read_lock(config.lock_path, cache_dir=cache)
    checks = [Check("lock", True, f"{config.lockfile} is valid (lockVersion {LOCK_VERSION})")]
    fresh = check_lock(config, cache_dir=cache, lock=lock)
    checks.append(Check("fresh", fresh.fresh, "the lock matches its inputs" if fresh.fresh
                        else "the lock is stale", tuple(f"{c}" for c in fresh.changes),
                        fix=RELOCK))
    return lock, checks


def run_checks(config: Config, *, key: Path | None, attestation: Path | None,
               rebuild: bool = False, progress: Progress | None = None,
               identity: KeylessIdentity | None = None) -> Report:
    cache = default_cache_dir()
    lock, checks = lock_checks(config, cache)
    trusted = _trusted(config, key) if identity is None else None
    if identity is not None:  # a keyless bundle: sigstore's verifier, for this identity
        from reprolock.verify.keyless import keyless_signature

        checks.append(attempt("signature",
                              lambda: keyless_signature(config.lock_path, identity)))
    if trusted is not None:
        checks.append(attempt("signature", lambda: _signature(config, trusted)))
    if lock.sbom is not None:
        checks.append(attempt("sbom", lambda: _sbom(config, lock)))
    if rebuild and any(p.source is not None for p in lock.packages):
        checks.append(_sdists(config, lock, cache, progress or (lambda _m: None)))
    if rebuild:
        checks.append(_rebuild(config, lock, fresh=checks[1].ok, cache=cache,
                               progress=progress or (lambda _m: None)))
    if attestation is not None:
        checks.append(attempt("provenance", _provenance_check(config, lock, attestation,
                                                              trusted, identity)))
    return Report(tuple(checks))


def _provenance_check(config: Config, lock: Lock, attestation: Path,
                      trusted: list[TrustedKey] | None,
                      identity: KeylessIdentity | None) -> Callable[[], str]:
    if identity is not None:
        return lambda: _keyless_provenance(config, lock, attestation, identity)
    if trusted is None:
        raise VerificationError("--attestation needs --key (or --certificate-identity) to "
                                "check its signature", hint="pass --key PUBLIC_KEY")
    return lambda: _provenance(config, lock, attestation, trusted)


def _trusted(config: Config, key: Path | None) -> list[TrustedKey] | None:
    if key is None:
        if config.require_signature:
            raise VerificationError(
                f"{config.source_name} sets require-signature = true, but no --key was given "
                "to check the lock's signature with",
                hint="pass --key PUBLIC_KEY (or a directory of trusted public keys)")
        return None
    from reprolock.signing.keys import load_trusted

    return load_trusted(key)


def _signature(config: Config, trusted: list[TrustedKey]) -> str:
    """The lock's ``.sig`` and its Sigstore bundle: each one present must verify."""
    from reprolock.signing.bundle import verify_signed_file

    checked = verify_signed_file(config.lock_path, trusted)
    key = checked.key
    return f"signed by {key.path.name} (key id {key.key_id[:16]}…; {checked.describe()})"


def _sbom(config: Config, lock: Lock) -> str:
    from reprolock.lock.check import locked_sbom

    assert lock.sbom is not None
    locked_sbom(config.root, lock)
    return f"{lock.sbom.path} is the one the lock records"


# -- rebuild ------------------------------------------------------------------------------

def _sdists(config: Config, lock: Lock, cache: Path, progress: Progress) -> Check:
    """Build every wheel the lock built from an sdist again, from the sdist (never the
    cached wheel), and compare: the build must make the locked bytes."""
    from reprolock.imagebuild.artifacts import ArtifactStore
    from reprolock.imagebuild.sdist import SdistBuilder
    from reprolock.resolver.interface import index_credentials, index_settings

    store = ArtifactStore(cache, project=config.root, credentials=index_credentials(config),
                          sdists=SdistBuilder(index_settings(config)))
    built = [p for p in lock.packages if p.source is not None]
    differ = []
    for pkg in built:
        progress(f"building {pkg.name} {pkg.version} again from its sdist")
        try:
            store.built(pkg, rebuild=True)
        except NotReproducibleError as exc:  # names both sha256
            differ.append(exc.message)
    if differ:
        return Check("sdists", False, f"{len(differ)} of {len(built)} wheels built again from "
                     "their sdists differ from the locked ones", tuple(differ),
                     fix="build with the Python the lock names; if the build itself is not "
                     "deterministic, pin a version that ships a wheel")
    return Check("sdists", True, f"{len(built)} wheel(s) built again from their sdists are the "
                 "locked ones, byte for byte", tuple(f"{p.name} {p.version}: "
                                                     f"{p.artifact.filename}" for p in built))


def _rebuild(config: Config, lock: Lock, *, fresh: bool, cache: Path,
             progress: Progress) -> Check:
    """Build the environment image again and compare its digests with the lock's."""
    if lock.image is None:
        return Check("rebuild", False, "the lock records no environment image (it was made "
                     "with --no-build)", fix="run 'reprolock lock' (without --no-build)")
    if not fresh:
        return Check("rebuild", False, "not rebuilt: the lock is stale", fix=RELOCK)
    moved = _base_moved(config, lock)
    if moved is not None:
        return moved
    changed = _changed_artifacts(config, lock)
    if changed:
        return Check("rebuild", False, "locked wheels changed since locking", tuple(changed),
                     fix="restore the wheels (their sha256 is in the lock), or run "
                     "'reprolock lock --upgrade-package NAME' to lock the new ones")
    return _compare_build(config, lock, cache, progress)


def _base_moved(config: Config, lock: Lock) -> Check | None:
    from reprolock.image.reference import open_source
    from reprolock.target import Platform

    with open_source(lock.base.reference, root=config.root) as source:  # unreadable: exit 2
        identity = source.resolve(Platform.parse(lock.target.platform)).identity
    if identity == lock.base.digest:
        return None
    return Check("rebuild", False, f"the base image {lock.base.reference} moved",
                 (f"base digest {lock.base.digest} → {identity}",),
                 fix="restore the locked base image, or run 'reprolock lock' to lock the new one")


def _changed_artifacts(config: Config, lock: Lock) -> list[str]:
    """Locked wheels that are files of the project (find-links) and no longer match."""
    lines = []
    for pkg in lock.packages:
        if pkg.artifact.path is None:
            continue  # index downloads are checked against the lock by the build itself
        path = config.root / pkg.artifact.path
        if not path.is_file():
            lines.append(f"package {pkg.name} {pkg.version}: {pkg.artifact.path} is missing")
        elif (actual := sha256_file(path)) != pkg.artifact.sha256:
            lines.append(f"package {pkg.name} {pkg.version}: artifact hash changed "
                         f"({pkg.artifact.filename}: {pkg.artifact.sha256[:12]}… → "
                         f"{actual[:12]}…)")
    return lines


def _compare_build(config: Config, lock: Lock, cache: Path, progress: Progress) -> Check:
    from reprolock.workflows.build import build_image

    assert lock.image is not None
    progress("rebuilding the environment image from the lock")
    try:
        report = build_image(config, _options(lock), outputs=(), tag=None, progress=progress,
                             cache_dir=cache, env_only=True, attach=False)
    except (VerificationError, NotReproducibleError) as exc:
        # the build refuses a changed SBOM, or a wheel its sdist does not build to
        return Check("rebuild", False, f"not rebuilt: {exc.message}", fix=exc.hint)
    if report.env_matches_lock:  # the one check, ImageRecord.matches, as build reports it
        return Check("rebuild", True, f"the environment image rebuilt from the lock is "
                     f"{report.env_manifest_digest}, as recorded")
    locked = [dict(x) for x in lock.image.layers]
    rebuilt = [dict(x) for x in report.layers[: len(locked)]]
    differences = layer_changes(locked, rebuilt) or [
        f"config {lock.image.config_digest} → {report.env_config_digest} (same layers: the "
        "image configuration differs, e.g. [image] env, entrypoint or workdir)"]
    return Check("rebuild", False, "the environment image rebuilt from the lock differs from "
                 f"the recorded one ({lock.image.manifest_digest} → "
                 f"{report.env_manifest_digest})", tuple(differences),
                 fix="run 'reprolock lock' to record the image this reprolock builds, and "
                 "review the differences above")


def _options(lock: Lock) -> Any:
    from reprolock.imagebuild.builder import BuildOptions, locked_compressor

    assert lock.image is not None
    return BuildOptions(compressor=locked_compressor(lock))


# -- provenance ---------------------------------------------------------------------------

def _provenance(config: Config, lock: Lock, path: Path, trusted: list[TrustedKey]) -> str:
    """The DSSE file and its Sigstore bundle (each one present) are signed provenance of
    this lock and its inputs."""
    from reprolock.signing.bundle import verify_envelope_files
    from reprolock.signing.dsse import read_envelope

    checked = verify_envelope_files(
        path, trusted, check=lambda _name, verified: _of_this_lock(config, lock, verified),
        read=lambda p: read_envelope(p, hint="pass the .reprolock/build.dsse.json that "
                                     "'reprolock build --sign-key' wrote"))
    return (f"signed by {checked.envelope.key.path.name}; image "
            f"sha256:{checked.result.get('image', '?')} built from this lock "
            f"({checked.describe()})")


def _keyless_provenance(config: Config, lock: Lock, path: Path,
                        identity: KeylessIdentity) -> str:
    """The keyless bundle beside the DSSE file signs provenance of this lock and inputs."""
    from reprolock._internal.jsonio import parse_json
    from reprolock.verify.keyless import keyless_statement

    payload, verified = keyless_statement(path, identity)
    statement = parse_json(payload, source=f"the statement {path.name} signs",
                           error=VerificationError)
    found = _names_this_lock(config, lock, statement)
    return f"{verified}; image sha256:{found.get('image', '?')} built from this lock"


def _of_this_lock(config: Config, lock: Lock, verified: VerifiedEnvelope) -> dict[str, str]:
    return _names_this_lock(config, lock, verified.statement())


def _names_this_lock(config: Config, lock: Lock, statement: Any) -> dict[str, str]:
    from reprolock.signing.dsse import check_subjects

    found = check_subjects(statement,
                           {config.lockfile: "sha256:" + sha256_file(config.lock_path)})
    recorded = _field(statement, "predicate", "buildDefinition", "externalParameters",
                      "inputsDigest")
    if recorded != lock.inputs_digest:
        shown = repr(recorded) if len(repr(recorded)) <= 80 else repr(recorded)[:77] + "..."
        raise VerificationError(f"the attestation was made for other inputs ({shown}, not "
                                f"{lock.inputs_digest})")
    return found


def _field(doc: Any, *keys: str) -> Any:
    """``doc[k1][k2]…``, or None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc
