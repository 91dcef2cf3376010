"""``run --attach registry:HOST/NAME:TAG``: the run's signed statement (its DSSE envelope
and its Sigstore bundle) as OCI 1.1 referrers of the image that ran, in the registry the
image was pushed to, found where the build's provenance is found (the referrers API, else
the ``sha256-<hex>`` fallback index, and cosign's ``.att`` tag)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reprolock._internal.jsonio import parse_json
from reprolock.errors import ConfigError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Manifest:
    manifest_digest: str
    manifest_size: int


def attach_run_statement(target: str, envelope: Path, *, image_id: str, created: str,
                         progress: Progress) -> str:
    """Push ``envelope`` as a referrer of the registry image ``target`` names, after
    checking that the image there is the one that ran (its configuration digest is the
    engine's image ID). Returns where it can be found."""
    from reprolock.image.registry import parse_registry_ref
    from reprolock.oci.blobstore import BlobStore
    from reprolock.oci.media import SIGSTORE_BUNDLE
    from reprolock.output.referrers import DSSE_MEDIA_TYPE, make_referrer
    from reprolock.output.registry import RegistryOutput
    from reprolock.output.registry_referrers import push_referrers
    from reprolock.signing.bundle import envelope_bundle_path, present

    ref = parse_registry_ref(target.removeprefix("registry:"))
    if not target.startswith("registry:") or ref is None:
        raise ConfigError(f"--attach {target!r} is not a registry reference",
                          hint="write registry:HOST/NAME:TAG (the image 'reprolock build "
                          "--output registry:' pushed)")
    out = RegistryOutput(ref)
    data, _, digest = out.reader.manifest(ref.digest or ref.tag or "latest")
    config = (parse_json(data, source=f"the manifest of {ref}").get("config") or {})
    if not isinstance(config, dict) or config.get("digest") != image_id:
        raise ConfigError(f"{ref} is not the image that ran: its configuration is "
                          f"{config.get('digest') if isinstance(config, dict) else None}, "
                          f"the run's image ID {image_id}",
                          hint="attach to the registry image built from the same lock and "
                          "code ('reprolock build --output registry:…'), named by its "
                          "platform manifest, not an index")
    subject = _Manifest(digest, len(data))
    bundle = envelope_bundle_path(envelope)  # cosign v3 reads the bundle referrer
    signed = [(envelope, DSSE_MEDIA_TYPE), *([(bundle, SIGSTORE_BUNDLE)] if present(bundle)
                                            else [])]
    with tempfile.TemporaryDirectory(prefix="reprolock-attach-") as tmp:
        blobs = BlobStore(Path(tmp))
        referrers = [make_referrer(blobs, subject, data=path.read_bytes(), media_type=kind,
                                   created=created) for path, kind in signed]
        where = push_referrers(out, subject, blobs, referrers, progress)
    return f"{ref.host}/{ref.repository}@{digest} ({where})"
