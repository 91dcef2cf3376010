"""Keyless Sigstore bundles, checked by sigstore's own :class:`Verifier` against an
expected identity: ``verify --certificate-identity ID --certificate-oidc-issuer URL``, the
names cosign gives these flags. The lock's bundle signs the lock's bytes; the build
provenance's and a run record's bundles sign an in-toto statement (DSSE).

A keyless bundle holds a Fulcio certificate and a Rekor entry instead of a key hint; its
signature is only as good as the identity the certificate names, so the identity and its
issuer are both required (as cosign requires them). The Fulcio and Rekor keys come from
Sigstore's trust root, fetched through TUF (network), or, with
``REPROLOCK_SIGSTORE_OFFLINE=1``, the one already on this machine.

    >>> keyless_signature(Path("reprolock.lock.json"),                      # doctest: +SKIP
    ...                   KeylessIdentity("me@example.org", "https://accounts.google.com"))
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reprolock._internal.jsonio import read_json
from reprolock.errors import SignatureFileError, VerificationError
from reprolock.signing.bundle import (
    BUNDLE_LIMIT,
    BUNDLE_SUFFIX,
    envelope_bundle_path,
    file_bundle_path,
    present,
)
from reprolock.signing.dsse import ENVELOPE_LIMIT
from reprolock.signing.keyless import Instance, service

if TYPE_CHECKING:
    from sigstore.models import Bundle
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

RESIGN = "sign the lock again ('reprolock sign --keyless' in CI)"
RESIGN_STATEMENT = "build or run again with --keyless (in CI)"
IN_TOTO = "application/vnd.in-toto+json"


@dataclass(frozen=True)
class KeylessIdentity:
    """Who must have signed: the certificate's SAN (an email, a workflow URI) and the OIDC
    issuer that vouched for it."""
    identity: str
    issuer: str


def read_keyless_bundle(path: Path, *, resign: str = RESIGN) -> Bundle:
    """A file that is not one strict JSON object is a broken input (exit 2); one that is
    JSON but not a bundle sigstore can read (a key-based one included) is a finding."""
    from sigstore.errors import Error
    from sigstore.models import Bundle

    read_json(path, error=SignatureFileError, limit=BUNDLE_LIMIT,
              hint=f"delete {path.name} and {resign}")  # strict: no duplicate keys
    try:
        return Bundle.from_json(path.read_bytes())
    except (Error, ValueError) as exc:
        raise VerificationError(f"{path.name} is not a keyless Sigstore bundle: "
                                f"{_first_line(exc)}",
                                hint=f"a bundle signed with --sign-key is checked with "
                                f"--key PUB; else {resign}") from None


def keyless_signature(path: Path, identity: KeylessIdentity) -> str:
    """``path``'s bundle verifies (certificate chain to Fulcio, Rekor entry, signature over
    ``path``'s bytes) and names ``identity``; VerificationError otherwise."""
    bundle_path = file_bundle_path(path)
    if not present(bundle_path):
        raise VerificationError(f"{path.name} is not signed keylessly (no {bundle_path.name})",
                                hint=RESIGN)
    bundle = read_keyless_bundle(bundle_path)
    where = _verified(bundle_path, identity, lambda verifier, policy: verifier.verify_artifact(
        path.read_bytes(), bundle, policy), changed=f"{path.name} changed after signing",
        resign=RESIGN)
    return f"{bundle_path.name} verifies: {where}"


def keyless_statement(envelope_file: Path, identity: KeylessIdentity) -> tuple[bytes, str]:
    """The in-toto statement that the keyless bundle beside ``envelope_file`` signs
    (``build.sigstore.json`` beside ``build.dsse.json``; a ``*.sigstore.json`` path is the
    bundle itself), checked by sigstore's Verifier for ``identity``, and a description.
    The DSSE file, where present, must hold the same payload: it is the older form of the
    same signature, and another statement there would be read by other tools."""
    given = envelope_file.name.endswith(BUNDLE_SUFFIX)
    bundle_path = envelope_file if given else envelope_bundle_path(envelope_file)
    if not present(bundle_path):
        raise VerificationError(f"{envelope_file.name} is not signed keylessly (no "
                                f"{bundle_path.name})", hint=RESIGN_STATEMENT)
    bundle = read_keyless_bundle(bundle_path, resign=RESIGN_STATEMENT)
    found: list[tuple[str, bytes]] = []
    where = _verified(bundle_path, identity,
                      lambda verifier, policy: found.append(verifier.verify_dsse(bundle, policy)),
                      changed="the statement changed after signing", resign=RESIGN_STATEMENT)
    payload_type, payload = found[0]
    if payload_type != IN_TOTO:
        raise VerificationError(f"{bundle_path.name} signs a {payload_type!r} payload, not an "
                                "in-toto statement", hint=RESIGN_STATEMENT)
    if not given and present(envelope_file):
        _same_payload(envelope_file, bundle_path, payload)
    return payload, f"{bundle_path.name} verifies: {where}"


def _verified(bundle_path: Path, identity: KeylessIdentity,
              check: Callable[[Verifier, Identity], object], *, changed: str,
              resign: str) -> str:
    """Run ``check`` with sigstore's Verifier (the instance's trust root) and a policy for
    ``identity``; its refusal is a finding naming both."""
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    instance = Instance.from_env()
    with service(f"Sigstore {instance.name}", instance.tuf_url):
        verifier = Verifier(trusted_root=instance.trust_config().trusted_root)
        try:
            check(verifier, Identity(identity=identity.identity, issuer=identity.issuer))
        except SigstoreVerificationError as exc:
            raise VerificationError(
                f"{bundle_path.name} does not verify as signed by {identity.identity} "
                f"({identity.issuer}): {_first_line(exc)}",
                hint=f"{changed}, or another identity signed it; {resign}") from None
    return (f"signed keylessly by {identity.identity} ({identity.issuer}), logged in Rekor "
            f"(Sigstore {instance.name})")


def _same_payload(envelope_file: Path, bundle_path: Path, payload: bytes) -> None:
    doc = read_json(envelope_file, error=SignatureFileError, limit=ENVELOPE_LIMIT,
                    hint=f"delete {envelope_file.name}: {bundle_path.name} is the signature")
    if doc.get("payload") != base64.b64encode(payload).decode():
        raise VerificationError(f"{envelope_file.name} holds another statement than the one "
                                f"{bundle_path.name} signs",
                                hint=f"{envelope_file.name} was changed after signing; "
                                f"{RESIGN_STATEMENT}")


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


__all__ = ["KeylessIdentity", "keyless_signature", "keyless_statement", "read_keyless_bundle"]
