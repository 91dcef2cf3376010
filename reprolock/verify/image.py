"""``reprolock verify --image REF``: a built image against the lock and the code.

Its base layers must be the lock's base, its dependency layers and configuration the
environment image the lock records, its code layer the current code tree (unless
``--allow-code-drift``), and with ``--key`` the build's signed provenance must name it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reprolock._internal.cache import default_cache_dir
from reprolock._internal.files import sha256_file
from reprolock.config import Config
from reprolock.image.interface import ResolvedImage
from reprolock.image.reference import open_source
from reprolock.lock.model import Lock
from reprolock.signing.interface import VerificationFailed
from reprolock.target import Platform
from reprolock.verify.diff import BASE_LAYER, layer_changes
from reprolock.verify.lockchecks import _signature, _trusted, lock_checks
from reprolock.verify.report import Check, Report, attempt

CODE_LABELS = ("dev.reprolock.code.tree", "dev.reprolock.lock.digest",
               "dev.reprolock.environment.config",
               "org.opencontainers.image.revision")
REBUILD = "rebuild the image: 'reprolock build --output …'"


def source_reference(text: str) -> str:
    """The ``--image`` forms (``oci:``, ``docker:`` as ``build --output`` writes them) in
    the image-source vocabulary."""
    for short, full in (("oci:", "oci-layout:"), ("docker:", "docker-daemon:")):
        if text.startswith(short):
            return full + text[len(short):]
    return text


def verify_image(config: Config, reference: str, *, key: Path | None,
                 attestation: Path | None, allow_code_drift: bool,
                 progress: Callable[[str], None]) -> Report:
    lock, checks = lock_checks(config, default_cache_dir())
    trusted = _trusted(config, key)  # require-signature without --key: exit 1, says so
    if trusted is not None:
        checks.append(attempt("signature", lambda: _signature(config, trusted)))
    if lock.image is None:
        checks.append(Check("image", False, "the lock records no environment image to compare "
                            "with", fix="run 'reprolock lock' (without --no-build)"))
        return Report(tuple(checks))
    progress(f"reading {reference}")
    image = _resolve(config, lock, reference)
    checks += [_base(lock, image), _dependencies(lock, image), _config(lock, image),
               _code(config, image, allow_code_drift)]
    if key is not None:
        checks.append(attempt("provenance", lambda: _provenance(config, image, key,
                                                                attestation)))
    return Report(tuple(checks))


def _resolve(config: Config, lock: Lock, reference: str) -> ResolvedImage:
    source = open_source(source_reference(reference), root=config.root)  # bad ref: exit 2
    try:
        return source.resolve(Platform.parse(lock.target["platform"]))
    finally:
        source.close()


def _layers(image: ResolvedImage) -> list[dict[str, Any]]:
    entries = [h for h in image.config.get("history", []) if not h.get("empty_layer")]
    holds = [str(h.get("created_by", "")).removeprefix("reprolock: ") for h in entries]
    # a base may keep no history: reprolock's own entries are the last ones
    holds = (["?"] * len(image.diff_ids) + holds)[-len(image.diff_ids):] if image.diff_ids \
        else []
    return [{"diffId": d, "holds": h} for d, h in zip(image.diff_ids, holds, strict=True)]


def _split(lock: Lock) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    assert lock.image is not None
    base = [x for x in lock.image.layers if x.get("holds") == BASE_LAYER]
    return base, [x for x in lock.image.layers if x.get("holds") != BASE_LAYER]


def _base(lock: Lock, image: ResolvedImage) -> Check:
    base, _ = _split(lock)
    actual = _layers(image)[: len(base)]
    labels = _labels(image)
    named = labels.get("org.opencontainers.image.base.digest")
    differences = []
    if named and named != lock.base.digest:
        differences.append(f"base digest {lock.base.digest} → {named}")
    differences += [line for line in layer_changes(base, actual) if line.startswith("layer")]
    if differences:
        return Check("base", False, "the image's base is not the lock's base",
                     tuple(differences), fix=REBUILD)
    return Check("base", True, f"{len(base)} base layers of {lock.base.digest[:19]}…")


def _dependencies(lock: Lock, image: ResolvedImage) -> Check:
    base, deps = _split(lock)
    actual = _layers(image)[len(base): len(base) + len(deps)]
    differences = layer_changes(deps, actual)
    if differences:
        return Check("dependencies", False, "the image's dependency layers are not the lock's",
                     tuple(differences), fix=REBUILD)
    return Check("dependencies", True, f"{len(deps)} dependency layers as locked")


def _labels(image: ResolvedImage) -> dict[str, str]:
    return dict((image.config.get("config") or {}).get("Labels") or {})


def environment_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The environment image's config, derived from the full image's: the same less the
    code layer, its history entry and the labels that name the code."""
    env = json.loads(json.dumps(config))
    labels = env.get("config", {}).get("Labels") or {}
    for name in CODE_LABELS:
        labels.pop(name, None)
    env["rootfs"]["diff_ids"] = env["rootfs"]["diff_ids"][:-1]
    env["history"] = env.get("history", [])[:-1]
    return dict(env)


def environment_config_digest(config: Mapping[str, Any]) -> str:
    """The digest the lock records (``image.configDigest``) for an image whose full
    configuration is ``config``."""
    derived = environment_config(config)
    data = json.dumps(derived, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def _config(lock: Lock, image: ResolvedImage) -> Check:
    assert lock.image is not None
    digest = environment_config_digest(image.config)
    if digest == lock.image.config_digest:
        return Check("config", True, "the configuration is the locked environment's "
                     f"({digest[:19]}…) plus the code")
    return Check("config", False, "the image configuration differs from the locked "
                 "environment's", (f"environment config {lock.image.config_digest} → {digest}",
                                   *config_fields(image.config)), fix=REBUILD)


def config_fields(config: Mapping[str, Any]) -> list[str]:
    """The run-time fields of an image configuration, one line each, for a report."""
    run = config.get("config") or {}
    return [f"{name}: {json.dumps(run.get(name))}" for name in
            ("Entrypoint", "Cmd", "WorkingDir", "Env") if run.get(name) is not None]


def _code(config: Config, image: ResolvedImage, allow: bool) -> Check:
    from reprolock.inspection.codeset import collect_code

    tree = collect_code(config).tree_digest
    built = _labels(image).get("dev.reprolock.code.tree")
    if built is None:
        return Check("code", False, "the image has no code layer (an environment image?)",
                     fix="verify the full image that 'reprolock build' writes")
    if built == tree:
        return Check("code", True, f"the code layer is the current code tree ({tree[:19]}…)")
    if allow:
        return Check("code", True, f"the code layer is another tree ({built[:19]}…, now "
                     f"{tree[:19]}…), allowed by --allow-code-drift")
    return Check("code", False, "the code layer is not the current code tree",
                 (f"code tree {built} → {tree}",),
                 fix="rebuild the image from this checkout, or pass --allow-code-drift")


def _provenance(config: Config, image: ResolvedImage, key: Path,
                attestation: Path | None) -> str:
    from reprolock.signing.dsse import check_subjects, verify_envelope
    from reprolock.signing.keys import load_trusted

    path = attestation or config.root / ".reprolock" / "build.dsse.json"
    try:
        envelope = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise VerificationFailed(f"cannot read the build attestation {path}: {exc}",
                                 hint="build with --sign-key, or pass --attestation FILE") from exc
    verified = verify_envelope(envelope, load_trusted(key))
    if image.manifest_digest is None:
        raise VerificationFailed("the image source keeps no manifest digest (a Docker Engine "
                                 "image), so the attestation cannot name it",
                                 hint="verify the oci:, oci-archive: or registry: output")
    check_subjects(verified.statement(), {"image": image.manifest_digest,
                                          config.lockfile: "sha256:" +
                                          sha256_file(config.lock_path)})
    return f"signed by {verified.key.path.name}; the attestation names this image and lock"
