"""DSSE v1 envelopes holding in-toto Statements (what cosign, in-toto and SLSA tools read)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reprolock.signing.interface import Signer, VerificationFailed
from reprolock.signing.keys import TrustedKey

INTOTO_PAYLOAD = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"


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
        try:
            doc = json.loads(self.payload)
        except ValueError as exc:
            raise VerificationFailed("the envelope's payload is not JSON") from exc
        kind = doc.get("_type") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or kind != STATEMENT_V1:
            raise VerificationFailed(
                f"the envelope's payload is not an in-toto Statement v1 (_type {kind!r})")
        return dict(doc)


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationFailed(f"the envelope's {what} is not a string")
    try:  # DSSE allows standard and URL-safe base64
        padded = text + "=" * (-len(text) % 4)
        alphabet = padded.replace("-", "+").replace("_", "/")
        return base64.b64decode(alphabet, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationFailed(f"the envelope's {what} is not base64") from exc


def verify_envelope(envelope: Mapping[str, Any], trusted: list[TrustedKey], *,
                    payload_type: str = INTOTO_PAYLOAD, threshold: int = 1) -> VerifiedEnvelope:
    """Exactly one signature by default, and it must be by a trusted key."""
    kind = envelope.get("payloadType")
    if kind != payload_type:
        raise VerificationFailed(f"the envelope's payloadType is {kind!r}, not {payload_type!r}",
                                 hint="this is not a reprolock build attestation")
    payload = _b64(envelope.get("payload"), "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise VerificationFailed("the envelope holds no signature", hint="sign the build again")
    if threshold == 1 and len(signatures) != 1:
        raise VerificationFailed(f"the envelope holds {len(signatures)} signatures; exactly one "
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
        raise VerificationFailed(
            "the envelope's signature is not valid for any trusted key "
            f"({', '.join(k.path.name for k in trusted)})",
            hint="the attestation was changed after signing, or signed with another key")
    return VerifiedEnvelope(payload, payload_type, accepted[0])


def check_subjects(statement: Mapping[str, Any], expected: Mapping[str, str]) -> None:
    """Each expected name → sha256 must be a subject of the statement, digest equal."""
    subjects = {s.get("name"): (s.get("digest") or {}).get("sha256")
                for s in statement.get("subject", []) if isinstance(s, dict)}
    for name, digest in expected.items():
        if name not in subjects:
            raise VerificationFailed(f"the attestation has no subject {name!r}")
        if subjects[name] != digest.removeprefix("sha256:"):
            raise VerificationFailed(
                f"the attestation's subject {name!r} has digest sha256:{subjects[name]}, but "
                f"the one checked is {digest}", hint="the attestation is for another build")
