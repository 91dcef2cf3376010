"""Detached signatures of files, in the format ``cosign verify-blob --key`` checks:
base64 of the ASN.1 DER ECDSA signature over SHA-256 of the file's exact bytes."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from reprolock._internal.files import atomic_write_text
from reprolock._internal.jsonio import read_bounded
from reprolock.errors import VerificationError
from reprolock.signing.interface import Signer
from reprolock.signing.keys import TrustedKey

#: A DER ECDSA P-256 signature is at most 72 bytes, 96 in base64; anything much larger is
#: not a signature, and is not read whole.
SIGNATURE_LIMIT = 4096


def signature_file(path: Path) -> Path:
    """Where ``path``'s detached signature is: ``reprolock.lock.json.sig``."""
    return path.with_name(path.name + ".sig")


def write_signature(path: Path, signature: bytes) -> Path:
    """Write ``signature`` (DER) as ``path``'s ``.sig`` file, base64."""
    target = signature_file(path)
    atomic_write_text(target, base64.b64encode(signature).decode())
    return target


def sign_file(path: Path, signer: Signer) -> Path:
    """Only the ``.sig`` file; :func:`reprolock.signing.bundle.sign_blob` writes the
    Sigstore bundle beside it too."""
    return write_signature(path, signer.sign(path.read_bytes()))


def decode_signature(data: bytes | str, *, where: str) -> bytes:
    if isinstance(data, bytes):
        try:
            data = data.decode("ascii")
        except UnicodeDecodeError:
            raise VerificationError(f"{where} is not base64 (it holds bytes that are not "
                                    "ASCII text)", hint="re-sign the file") from None
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{where} is not base64", hint="re-sign the file") from None
    if not raw:
        raise VerificationError(f"{where} is empty", hint="re-sign the file")
    return raw


def read_signature(signature_path: Path, *, signed: Path) -> bytes:
    """The decoded signature in ``signature_path``; VerificationError when it is missing,
    unreadable, oversized or not base64 (a lock with such a signature is not signed)."""
    if not signature_path.exists() and not signature_path.is_symlink():
        raise VerificationError(f"{signed.name} is not signed (no {signature_path.name})",
                                hint=f"run 'reprolock sign KEY' to sign {signed.name}")
    data = read_bounded(signature_path, limit=SIGNATURE_LIMIT, error=VerificationError,
                        hint=f"run 'reprolock sign KEY' to sign {signed.name} again")
    return decode_signature(data, where=signature_path.name)


def verify_file(path: Path, trusted: list[TrustedKey], *, signature_path: Path | None = None,
                ) -> TrustedKey:
    """The trusted key whose signature this is; VerificationError otherwise."""
    where = signature_path or signature_file(path)
    signature = read_signature(where, signed=path)
    return verify_bytes(signature, path.read_bytes(), trusted, signature_name=where.name,
                        signed=path)


def verify_bytes(signature: bytes, data: bytes, trusted: list[TrustedKey], *,
                 signature_name: str, signed: Path) -> TrustedKey:
    """The trusted key whose DER ECDSA ``signature`` is over ``data`` (the bytes of
    ``signed``); VerificationError naming ``signature_name`` otherwise. The one check of
    a detached signature, whichever file (``.sig`` or bundle) held it."""
    for key in trusted:
        if key.verifies(signature, data):
            return key
    raise VerificationError(
        f"{signature_name} is not a valid signature of {signed.name} by a trusted key "
        f"({', '.join(k.path.name for k in trusted)})",
        hint=f"{signed.name} changed after it was signed, or it was signed with another key")
