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


def sign_file(path: Path, signer: Signer) -> Path:
    signature_path = path.with_name(path.name + ".sig")
    signature = base64.b64encode(signer.sign(path.read_bytes())).decode()
    atomic_write_text(signature_path, signature)
    return signature_path


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
    signature_path = signature_path or path.with_name(path.name + ".sig")
    signature = read_signature(signature_path, signed=path)
    data = path.read_bytes()
    for key in trusted:
        if key.verifies(signature, data):
            return key
    raise VerificationError(
        f"{signature_path.name} is not a valid signature of {path.name} by a trusted key "
        f"({', '.join(k.path.name for k in trusted)})",
        hint=f"{path.name} changed after it was signed, or it was signed with another key")
