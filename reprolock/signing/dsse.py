"""DSSE v1 envelopes holding in-toto Statements (what cosign, in-toto and SLSA tools read)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolock._internal.jsonio import parse_json, read_json
from reprolock.errors import VerificationError
from reprolock.signing.interface import Signer
from reprolock.signing.keys import TrustedKey

INTOTO_PAYLOAD = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
#: Envelopes hold one statement of at most a few thousand subjects and dependencies.
ENVELOPE_LIMIT = 16 << 20


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-Authentication Encoding, exactly per DSSE v1."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_envelope(payload: bytes, signer: Signer, *,
                  payload_type: str = INTOTO_PAYLOAD) -> dict[str, Any]:
    signature = signer.sign(pae(payload_type, payload))
    return {"payload": base64.b64encode(payload).decode(), "payloadType": payload_type,
            "signatures": [{"keyid": signer.key_id, "sig": base64.b64encode(signature).decode()}]}


@dataclass(frozen=True)
class VerifiedEnvelope:
    payload: bytes
    payload_type: str
    key: TrustedKey

    def statement(self) -> dict[str, Any]:
        """The payload, strictly parsed: a duplicate key would let the signature cover one
        statement while a check reads another."""
        doc: dict[str, Any] = parse_json(self.payload, source="the envelope's payload",
                                         error=VerificationError)
        kind = doc.get("_type")
        if kind != STATEMENT_V1:
            raise VerificationError(
                f"the envelope's payload is not an in-toto Statement v1 (_type {_short(kind)})")
        return doc


def read_envelope(path: Path, *, hint: str | None = None) -> dict[str, Any]:
    """A DSSE envelope file, strictly parsed and bounded; VerificationError (a finding:
    what should vouch for something does not) when it is missing or malformed."""
    envelope: dict[str, Any] = read_json(path, error=VerificationError, hint=hint,
                                         limit=ENVELOPE_LIMIT)
    return envelope


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"the envelope's {what} is not a string")
    try:  # DSSE allows standard and URL-safe base64
        padded = text + "=" * (-len(text) % 4)
        alphabet = padded.replace("-", "+").replace("_", "/")
        return base64.b64decode(alphabet, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(f"the envelope's {what} is not base64") from exc


def verify_envelope(envelope: Mapping[str, Any], trusted: list[TrustedKey], *,
                    payload_type: str = INTOTO_PAYLOAD, threshold: int = 1) -> VerifiedEnvelope:
    """Exactly one signature by default, and it must be by a trusted key."""
    if not isinstance(envelope, Mapping):
        raise VerificationError(f"the envelope is not a JSON object (it is "
                                f"{type(envelope).__name__})", hint="this is not a DSSE envelope")
    kind = envelope.get("payloadType")
    if kind != payload_type:
        raise VerificationError(f"the envelope's payloadType is {_short(kind)}, not "
                                f"{payload_type!r}", hint="this is not a reprolock attestation")
    payload = _b64(envelope.get("payload"), "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise VerificationError("the envelope holds no signature", hint="sign the build again")
    if threshold == 1 and len(signatures) != 1:
        raise VerificationError(f"the envelope holds {len(signatures)} signatures; exactly one "
                                "is expected", hint="keep only the build's own signature")
    message = pae(payload_type, payload)
    accepted: list[TrustedKey] = []
    for item in signatures:
        sig = _b64(item.get("sig") if isinstance(item, dict) else None, "signature")
        for key in trusted:
            if key not in accepted and key.verifies(sig, message):
                accepted.append(key)
                break
    if len(accepted) < threshold:
        raise VerificationError(
            "the envelope's signature is not valid for any trusted key "
            f"({', '.join(k.path.name for k in trusted)})",
            hint="the attestation was changed after signing, or signed with another key")
    return VerifiedEnvelope(payload, payload_type, accepted[0])


def subjects(statement: Mapping[str, Any]) -> dict[str, str]:
    """name → sha256 hex of each subject; a malformed or repeated subject is refused (two
    subjects of one name would let a check read the one that was not meant)."""
    items = statement.get("subject")
    if not isinstance(items, list):
        raise VerificationError("the statement's subject is not a list",
                                hint="this is not an in-toto Statement v1")
    found: dict[str, str] = {}
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        digest = item.get("digest") if isinstance(item, dict) else None
        sha256 = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(name, str) or not isinstance(sha256, str):
            raise VerificationError(f"the statement has a malformed subject ({_short(item)}): "
                                    "each needs a name and a digest.sha256 string",
                                    hint="this is not an in-toto Statement v1")
        if name in found:
            raise VerificationError(f"the statement names the subject {_short(name)} twice",
                                    hint="the attestation was crafted; do not trust it")
        found[name] = sha256
    return found


def check_subjects(statement: Mapping[str, Any], expected: Mapping[str, str]) -> dict[str, str]:
    """Each expected name → sha256 must be a subject of the statement, digest equal.
    Returns every subject (name → sha256 hex)."""
    found = subjects(statement)
    for name, digest in expected.items():
        if name not in found:
            raise VerificationError(f"the attestation has no subject {name!r}")
        if found[name] != digest.removeprefix("sha256:"):
            raise VerificationError(
                f"the attestation's subject {name!r} has digest sha256:{_short(found[name])}, "
                f"but the one checked is {digest}", hint="the attestation is for another build")
    return found
