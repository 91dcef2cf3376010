"""What a signer is. Local ECDSA P-256 keys today; keyless Sigstore signing needs
network services that are not reachable here, so it is not faked: it can be added as
another :class:`Signer`."""

from __future__ import annotations

import abc

from reprolock.errors import EXIT_FINDING, ReprolockError


class KeyFileError(ReprolockError):
    """A key file is missing, unreadable, of the wrong type, or the passphrase is wrong."""


class VerificationFailed(ReprolockError):
    """A signature, envelope or digest does not check out: a finding, exit 1."""

    exit_code = EXIT_FINDING


class Signer(abc.ABC):
    @property
    @abc.abstractmethod
    def key_id(self) -> str:
        """sha256 of the public key's DER (SubjectPublicKeyInfo), hex."""

    @abc.abstractmethod
    def sign(self, data: bytes) -> bytes:
        """ASN.1 DER ECDSA signature over SHA-256 of ``data``."""
