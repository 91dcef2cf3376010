"""Detached signatures of files, in the format ``cosign verify-blob --key`` checks:
base64 of the ASN.1 DER ECDSA signature over SHA-256 of the file's exact bytes."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from reprolock._internal.files import atomic_write_text
from reprolock.signing.interface import Signer, VerificationFailed
from reprolock.signing.keys import TrustedKey


def sign_file(path: Path, signer: Signer) -> Path:
    signature_path = path.with_name(path.name + ".sig")
    signature = base64.b64encode(signer.sign(path.read_bytes())).decode()
    atomic_write_text(signature_path, signature)
    return signature_path


def decode_signature(text: str, *, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationFailed(f"{where} is not base64", hint="re-sign the file") from exc
    if not raw:
        raise VerificationFailed(f"{where} is empty", hint="re-sign the file")
    return raw


def verify_file(path: Path, trusted: list[TrustedKey], *, signature_path: Path | None = None,
                ) -> TrustedKey:
    """The trusted key whose signature this is; VerificationFailed otherwise."""
    signature_path = signature_path or path.with_name(path.name + ".sig")
    try:
        text = signature_path.read_text()
    except FileNotFoundError as exc:
        raise VerificationFailed(f"{path.name} is not signed (no {signature_path.name})",
                                 hint=f"run 'reprolock sign KEY' to sign {path.name}") from exc
    signature = decode_signature(text, where=signature_path.name)
    data = path.read_bytes()
    for key in trusted:
        if key.verifies(signature, data):
            return key
    raise VerificationFailed(
        f"{signature_path.name} is not a valid signature of {path.name} by a trusted key "
        f"({', '.join(k.path.name for k in trusted)})",
        hint=f"{path.name} changed after it was signed, or it was signed with another key")
