"""ECDSA P-256 keys in the forms cosign reads: an encrypted PKCS#8 PEM private key
(mode 0600) and a SubjectPublicKeyInfo PEM public key."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from reprolock._internal.files import atomic_write_bytes
from reprolock._internal.jsonio import read_bounded
from reprolock.errors import KeyFileError
from reprolock.signing.interface import Signer

PASSWORD_ENV = "REPROLOCK_KEY_PASSWORD"
#: A P-256 PEM key is a few hundred bytes; a larger "key" is not one, and is not read whole.
KEY_LIMIT = 64 << 10


def key_id(public: ec.EllipticCurvePublicKey) -> str:
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def generate_keypair(prefix: Path, *, passphrase: bytes, force: bool = False) -> tuple[Path, Path]:
    """Write PREFIX.key (0600, encrypted PKCS#8) and PREFIX.pub (SPKI)."""
    private_path, public_path = prefix.with_suffix(".key"), prefix.with_suffix(".pub")
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise KeyFileError(f"{path} exists", hint="pass --force to overwrite it, or "
                               "choose another --output")
    if not passphrase:
        raise KeyFileError("an empty passphrase would leave the private key unencrypted",
                           hint=f"set {PASSWORD_ENV} or type a passphrase at the prompt")
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.BestAvailableEncryption(passphrase))
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    atomic_write_bytes(private_path, private_pem, mode=0o600)
    atomic_write_bytes(public_path, public_pem, mode=0o644)
    return private_path, public_path


class LocalSigner(Signer):
    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    @property
    def key_id(self) -> str:
        return key_id(self._key.public_key())

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


def load_signer(path: Path, *, passphrase: bytes | None) -> LocalSigner:
    data = read_bounded(path, limit=KEY_LIMIT, error=KeyFileError,
                        hint="pass the .key file 'reprolock keygen' wrote")
    if passphrase is None:
        passphrase = os.environ.get(PASSWORD_ENV, "").encode() or None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:
        raise KeyFileError(f"{path} is encrypted and no passphrase was given",
                           hint=f"set {PASSWORD_ENV}") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"cannot load private key {path}: wrong passphrase or not a PEM "
                           "private key", hint=f"check {PASSWORD_ENV} and the file") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve,
                                                                         ec.SECP256R1):
        raise KeyFileError(f"{path} is not an ECDSA P-256 key ({_describe(key)})",
                           hint="make one with 'reprolock keygen' (cosign uses P-256 too)")
    return LocalSigner(key)


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    path: Path
    key: ec.EllipticCurvePublicKey

    def verifies(self, signature: bytes, data: bytes) -> bool:
        for candidate in _der_forms(signature):
            try:
                self.key.verify(candidate, data, ec.ECDSA(hashes.SHA256()))
                return True
            except InvalidSignature:
                continue
        return False


def load_trusted(path: Path) -> list[TrustedKey]:
    """One public key file, or every *.pub / *.pem file in a directory."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".pub", ".pem") and p.is_file())
        if not files:
            raise KeyFileError(f"{path} holds no .pub or .pem public keys",
                               hint="put trusted public keys (SPKI PEM) there")
    elif path.is_file():
        files = [path]
    else:
        raise KeyFileError(f"no public key at {path}", hint="pass a .pub file or a directory")
    return [_load_public(p) for p in files]


def _load_public(path: Path) -> TrustedKey:
    data = read_bounded(path, limit=KEY_LIMIT, error=KeyFileError,
                        hint="pass the .pub file 'reprolock keygen' wrote")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} is not a PEM public key",
                           hint="pass the .pub file 'reprolock keygen' wrote") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve,
                                                                        ec.SECP256R1):
        raise KeyFileError(f"{path} is not an ECDSA P-256 public key ({_describe(key)})",
                           hint="reprolock signs with P-256 keys, as cosign does")
    return TrustedKey(key_id(key), path, key)


def _der_forms(signature: bytes) -> list[bytes]:
    """DER as cosign writes it; a raw r||s (64 bytes) as some DSSE signers write it."""
    forms = [signature]
    if len(signature) == 64:
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        forms.append(encode_dss_signature(r, s))
    return forms


def _describe(key: object) -> str:
    curve = getattr(key, "curve", None)
    return f"{type(key).__name__.lstrip('_')}{f' on {curve.name}' if curve else ''}"
