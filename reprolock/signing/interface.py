"""What a signer is. Local ECDSA P-256 keys today; keyless Sigstore signing needs
network services that are not reachable here, so it is not faked: it can be added as
another :class:`Signer`."""

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


__all__ = ["Signer"]
