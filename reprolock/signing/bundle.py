"""Sigstore bundles v0.3 (``application/vnd.dev.sigstore.bundle.v0.3+json``), key-based,
written beside reprolock's older signature files and read by ``verify`` with them.

A bundle holds either a message signature over a file (the lock: the same DER ECDSA
signature as ``reprolock.lock.json.sig``) or the DSSE envelope of an in-toto statement
(build provenance, run records). Its verification material is a public-key hint (the
reprolock key id: sha256 of the key's DER, hex) and no transparency-log entry: signing
here is offline, as cosign's ``--key`` signing without Rekor is. The signatures in a
bundle are checked by the same functions as the older files (:func:`blob.verify_bytes`,
:func:`dsse.verify_envelope`), so there is one implementation of each check.

    >>> signed = sign_blob(Path("reprolock.lock.json"), signer)      # doctest: +SKIP
    >>> signed.bundle.name                                           # doctest: +SKIP
    'reprolock.lock.json.sigstore.json'
    >>> verify_signed_file(Path("reprolock.lock.json"), trusted)    # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from reprolock._internal.files import atomic_write_bytes
from reprolock._internal.jsonio import read_json
from reprolock.errors import SignatureFileError, VerificationError
from reprolock.oci.media import SIGSTORE_BUNDLE
from reprolock.signing.blob import (
    decode_signature,
    signature_file,
    verify_bytes,
    verify_file,
    write_signature,
)
from reprolock.signing.dsse import ENVELOPE_LIMIT, VerifiedEnvelope, verify_envelope
from reprolock.signing.interface import Signer
from reprolock.signing.keys import TrustedKey

BUNDLE_MEDIA_TYPE = SIGSTORE_BUNDLE
BUNDLE_SUFFIX = ".sigstore.json"
#: the protobuf-specs name of SHA-256 (``HashAlgorithm.SHA2_256``)
SHA2_256 = "SHA2_256"
#: a bundle is its DSSE envelope plus a few hundred bytes of verification material
BUNDLE_LIMIT = ENVELOPE_LIMIT + (64 << 10)
RESIGN = "sign again ('reprolock sign KEY', or the command's --sign-key)"


# -- where bundles go ---------------------------------------------------------------------

def file_bundle_path(path: Path) -> Path:
    """The bundle of a signed file: ``reprolock.lock.json.sigstore.json``."""
    return path.with_name(path.name + BUNDLE_SUFFIX)


def envelope_bundle_path(envelope: Path) -> Path:
    """The bundle beside a DSSE file: ``build.dsse.json`` → ``build.sigstore.json``,
    ``RUN.dsse.json`` → ``RUN.sigstore.json``; another name gains ``.sigstore.json``."""
    name = envelope.name
    for suffix in (".dsse.json", ".json"):
        if name.endswith(suffix) and name != suffix:
            return envelope.with_name(name.removesuffix(suffix) + BUNDLE_SUFFIX)
    return envelope.with_name(name + BUNDLE_SUFFIX)


def present(path: Path) -> bool:
    """A file, or anything else at that name (a dangling link is there, and unreadable)."""
    return path.exists() or path.is_symlink()


# -- writing ------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _material(key_id: str) -> dict[str, Any]:
    return {"publicKey": {"hint": key_id}, "tlogEntries": []}


def message_bundle(data: bytes, signature: bytes, *, key_id: str) -> dict[str, Any]:
    """A bundle of a detached signature over ``data`` (DER ECDSA over its SHA-256)."""
    return {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": _material(key_id),
            "messageSignature": {
                "messageDigest": {"algorithm": SHA2_256,
                                  "digest": _b64(hashlib.sha256(data).digest())},
                "signature": _b64(signature)}}


def dsse_bundle(envelope: Mapping[str, Any], *, key_id: str) -> dict[str, Any]:
    """A bundle of a signed DSSE envelope, exactly its payload and signatures."""
    signatures = [{"sig": s["sig"], "keyid": s.get("keyid", "")}
                  for s in envelope["signatures"]]
    return {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": _material(key_id),
            "dsseEnvelope": {"payload": envelope["payload"],
                             "payloadType": envelope["payloadType"],
                             "signatures": signatures}}


def write_bundle(path: Path, bundle: Mapping[str, Any]) -> Path:
    atomic_write_bytes(path, (json.dumps(bundle, indent=2, sort_keys=True) + "\n").encode())
    return path


@dataclass(frozen=True)
class SignedFile:
    signature: Path  # FILE.sig, cosign's older blob format
    bundle: Path  # FILE.sigstore.json


def sign_blob(path: Path, signer: Signer) -> SignedFile:
    """Sign ``path`` once and write the signature in both formats."""
    data = path.read_bytes()
    signature = signer.sign(data)
    bundle = _write_issued(file_bundle_path(path), signer, signature) or write_bundle(
        file_bundle_path(path), message_bundle(data, signature, key_id=signer.key_id))
    return SignedFile(write_signature(path, signature), bundle)


def write_envelope_bundle(envelope: Mapping[str, Any], envelope_file: Path,
                          signer: Signer) -> Path:
    """The bundle of ``envelope`` beside the DSSE file it was written to."""
    path = envelope_bundle_path(envelope_file)
    signature = decode_signature(str(envelope["signatures"][0]["sig"]),
                                 where=envelope_file.name)
    return _write_issued(path, signer, signature) or write_bundle(
        path, dsse_bundle(envelope, key_id=signer.key_id))


def _write_issued(path: Path, signer: Signer, signature: bytes) -> Path | None:
    """The bundle the signing service issued with ``signature`` (keyless), if any."""
    issued = signer.issued_bundle(signature)
    if issued is None:
        return None
    atomic_write_bytes(path, (issued.rstrip("\n") + "\n").encode())
    return path


# -- reading ------------------------------------------------------------------------------

def read_bundle(path: Path) -> dict[str, Any]:
    """A bundle, strictly parsed and bounded. A file that is not one JSON object (a
    duplicate key, not UTF-8, too large) is a broken input: exit 2, as a malformed
    record envelope is. One that parses but is not a v0.3 bundle is a finding."""
    bundle: dict[str, Any] = read_json(path, error=SignatureFileError, limit=BUNDLE_LIMIT,
                                       hint=f"delete {path.name} and {RESIGN}")
    kind = bundle.get("mediaType")
    if kind != BUNDLE_MEDIA_TYPE:
        raise VerificationError(f"{path.name} is not a Sigstore bundle v0.3 (mediaType "
                                f"{_short(kind)}, not {BUNDLE_MEDIA_TYPE!r})", hint=RESIGN)
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict) or not isinstance(material.get("publicKey"), dict):
        raise VerificationError(
            f"{path.name} holds no publicKey verification material: reprolock checks "
            "key-based bundles (a certificate bundle is keyless Sigstore signing)",
            hint=RESIGN)
    return bundle


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _field(doc: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    value = doc.get(name)
    if not isinstance(value, dict):
        raise VerificationError(f"{where} has no {name} object", hint=RESIGN)
    return value


def verify_file_bundle(path: Path, bundle_path: Path, trusted: list[TrustedKey]) -> TrustedKey:
    """The trusted key whose message signature in ``bundle_path`` is over ``path``'s exact
    bytes, and whose digest is their SHA-256; VerificationError naming the bundle."""
    bundle = read_bundle(bundle_path)
    where = bundle_path.name
    message = _field(bundle, "messageSignature", where)
    raw = message.get("signature")
    signature = decode_signature(raw if isinstance(raw, str) else "",
                                 where=f"{where}'s messageSignature.signature")
    data = path.read_bytes()
    key = verify_bytes(signature, data, trusted, signature_name=where, signed=path)
    # the digest is not signed: a verifier that trusts it (cosign given a digest) must find
    # the file's own, or the bundle says one thing to it and another here
    digest = _field(message, "messageDigest", f"{where}'s messageSignature")
    if digest.get("algorithm") != SHA2_256:
        raise VerificationError(f"{where}'s messageDigest algorithm is "
                                f"{_short(digest.get('algorithm'))}, not {SHA2_256!r}",
                                hint=RESIGN)
    if _digest(digest.get("digest"), where) != hashlib.sha256(data).digest():
        raise VerificationError(f"{where}'s messageDigest is not the SHA-256 of {path.name}",
                                hint=f"the bundle was edited after signing; {RESIGN}")
    return key


def _digest(text: object, where: str) -> bytes:
    try:
        return base64.b64decode(text if isinstance(text, str) else "", validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{where}'s messageDigest.digest is not base64",
                                hint=RESIGN) from None


def verify_dsse_bundle(bundle_path: Path, trusted: list[TrustedKey]) -> VerifiedEnvelope:
    """The DSSE envelope in ``bundle_path``, verified exactly as a DSSE file is."""
    bundle = read_bundle(bundle_path)
    envelope = _field(bundle, "dsseEnvelope", bundle_path.name)
    try:
        return verify_envelope(envelope, trusted)
    except VerificationError as exc:
        raise VerificationError(f"{bundle_path.name}: {exc.message}", hint=exc.hint) from None


# -- both formats -------------------------------------------------------------------------

@dataclass(frozen=True)
class Checked:
    """What vouched for a file or a statement: the key and the files that verified."""
    key: TrustedKey
    files: tuple[str, ...]

    def describe(self) -> str:
        return f"{' and '.join(self.files)} verif{'y' if len(self.files) > 1 else 'ies'}"


def verify_signed_file(path: Path, trusted: list[TrustedKey]) -> Checked:
    """``path``'s Sigstore bundle and ``.sig`` file: each one present must verify; either
    alone is enough. With neither, the older file's 'not signed' error."""
    legacy, bundle = signature_file(path), file_bundle_path(path)
    checked: list[tuple[str, TrustedKey]] = []
    if present(bundle):  # first: a failure names the format cosign v3 reads
        checked.append((bundle.name, verify_file_bundle(path, bundle, trusted)))
    if present(legacy) or not present(bundle):
        checked.append((legacy.name, verify_file(path, trusted)))
    return Checked(checked[0][1], tuple(name for name, _ in checked))


T = TypeVar("T")


@dataclass(frozen=True)
class CheckedStatement(Generic[T]):
    """The first file's verified envelope and what ``check`` made of its statement."""
    envelope: VerifiedEnvelope
    result: T
    files: tuple[str, ...]

    def describe(self) -> str:
        return Checked(self.envelope.key, self.files).describe()


def verify_envelope_files(path: Path, trusted: list[TrustedKey], *,
                          read: Callable[[Path], Mapping[str, Any]],
                          check: Callable[[str, VerifiedEnvelope], T]) -> CheckedStatement[T]:
    """The Sigstore bundle beside the DSSE file at ``path``, then that file (read by
    ``read``, which also decides what a missing or malformed one is): each one present
    must verify and its statement pass ``check`` (called with the file's name); either
    alone is enough. Each is checked in full, so a bundle left from another build or run
    fails as an envelope of one would. A ``path`` named ``*.sigstore.json`` is a bundle,
    checked alone."""
    given = path.name.endswith(BUNDLE_SUFFIX)
    bundle = path if given else envelope_bundle_path(path)
    checked: list[tuple[str, VerifiedEnvelope, T]] = []
    if present(bundle) or given:
        verified = verify_dsse_bundle(bundle, trusted)
        checked.append((bundle.name, verified, _named(bundle.name, check, verified)))
    if not given and (present(path) or not present(bundle)):
        verified = verify_envelope(read(path), trusted)
        checked.append((path.name, verified, check(path.name, verified)))
    first = checked[0]
    return CheckedStatement(first[1], first[2], tuple(name for name, _, _ in checked))


def _named(name: str, check: Callable[[str, VerifiedEnvelope], T],
           verified: VerifiedEnvelope) -> T:
    """``check``, its finding prefixed with the bundle's name unless it names it."""
    try:
        return check(name, verified)
    except VerificationError as exc:
        if name in exc.message:
            raise
        raise VerificationError(f"{name}: {exc.message}", hint=exc.hint) from None


__all__ = ["BUNDLE_MEDIA_TYPE", "Checked", "CheckedStatement", "SignedFile",
           "dsse_bundle", "envelope_bundle_path", "file_bundle_path", "message_bundle",
           "read_bundle", "sign_blob", "verify_dsse_bundle", "verify_envelope_files",
           "verify_file_bundle", "verify_signed_file", "write_envelope_bundle"]
