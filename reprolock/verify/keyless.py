"""The lock's keyless Sigstore bundle, checked by sigstore's own :class:`Verifier` against
an expected identity: ``verify --certificate-identity ID --certificate-oidc-issuer URL``,
the names cosign gives these flags.

A keyless bundle holds a Fulcio certificate and a Rekor entry instead of a key hint; its
signature is only as good as the identity the certificate names, so the identity and its
issuer are both required (as cosign requires them). The Fulcio and Rekor keys come from
Sigstore's trust root, fetched through TUF (network), or, with
``REPROLOCK_SIGSTORE_OFFLINE=1``, the one already on this machine.

    >>> keyless_signature(Path("reprolock.lock.json"),                      # doctest: +SKIP
    ...                   KeylessIdentity("me@example.org", "https://accounts.google.com"))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reprolock._internal.jsonio import read_json
from reprolock.errors import SignatureFileError, VerificationError
from reprolock.signing.bundle import BUNDLE_LIMIT, file_bundle_path, present
from reprolock.signing.keyless import Instance, service

if TYPE_CHECKING:
    from sigstore.models import Bundle

RESIGN = "sign the lock again ('reprolock sign --keyless' in CI)"


@dataclass(frozen=True)
class KeylessIdentity:
    """Who must have signed: the certificate's SAN (an email, a workflow URI) and the OIDC
    issuer that vouched for it."""
    identity: str
    issuer: str


def read_keyless_bundle(path: Path) -> Bundle:
    """A file that is not one strict JSON object is a broken input (exit 2); one that is
    JSON but not a bundle sigstore can read (a key-based one included) is a finding."""
    from sigstore.errors import Error
    from sigstore.models import Bundle

    read_json(path, error=SignatureFileError, limit=BUNDLE_LIMIT,
              hint=f"delete {path.name} and {RESIGN}")  # strict: no duplicate keys
    try:
        return Bundle.from_json(path.read_bytes())
    except (Error, ValueError) as exc:
        raise VerificationError(f"{path.name} is not a keyless Sigstore bundle: "
                                f"{_first_line(exc)}",
                                hint=f"a bundle signed with --sign-key is checked with "
                                f"--key PUB; else {RESIGN}") from None


def keyless_signature(path: Path, identity: KeylessIdentity) -> str:
    """``path``'s bundle verifies (certificate chain to Fulcio, Rekor entry, signature over
    ``path``'s bytes) and names ``identity``; VerificationError otherwise."""
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    bundle_path = file_bundle_path(path)
    if not present(bundle_path):
        raise VerificationError(f"{path.name} is not signed keylessly (no {bundle_path.name})",
                                hint=RESIGN)
    bundle = read_keyless_bundle(bundle_path)
    instance = Instance.from_env()
    verifier = Verifier(trusted_root=instance.trust_config().trusted_root)
    policy = Identity(identity=identity.identity, issuer=identity.issuer)
    with service(f"Sigstore {instance.name}", instance.tuf_url):
        try:
            verifier.verify_artifact(path.read_bytes(), bundle, policy)
        except SigstoreVerificationError as exc:
            raise VerificationError(
                f"{bundle_path.name} does not verify as signed by {identity.identity} "
                f"({identity.issuer}): {_first_line(exc)}",
                hint=f"{path.name} changed after signing, or another identity signed it; "
                f"{RESIGN}") from None
    return (f"{bundle_path.name} verifies: signed keylessly by {identity.identity} "
            f"({identity.issuer}), logged in Rekor (Sigstore {instance.name})")


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


__all__ = ["KeylessIdentity", "keyless_signature", "read_keyless_bundle"]
