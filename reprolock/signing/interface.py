"""What a signer is: a local ECDSA P-256 key (:mod:`reprolock.signing.keys`), or keyless
Sigstore signing (:mod:`reprolock.signing.keyless`: a Fulcio certificate and a Rekor entry,
which needs those services)."""

from __future__ import annotations

import abc


class Signer(abc.ABC):
    @property
    @abc.abstractmethod
    def key_id(self) -> str:
        """sha256 of the public key's DER (SubjectPublicKeyInfo), hex."""

    @abc.abstractmethod
    def sign(self, data: bytes) -> bytes:
        """ASN.1 DER ECDSA signature over SHA-256 of ``data``."""

    def issued_bundle(self, signature: bytes) -> str | None:
        """The Sigstore bundle JSON the signing service issued with ``signature``
        (keyless: certificate, transparency-log entry), to be written instead of the
        key-based bundle reprolock makes; None for a key, which has no such service."""
        return None


__all__ = ["Signer"]
