"""Trained models signed in the OpenSSF Model Signing format (spec v1.0), through the
``model-signing`` library: a Sigstore bundle v0.3 whose DSSE envelope holds an in-toto
statement listing every file of the model directory with its sha256. The statement's one
subject digest (sha256 over the per-file digests, in path order) is the *manifest
digest*: what a run statement names so that the model leads back to the run.

    >>> signed = sign_model(Path("outputs"), ModelKey(Path("k.key"), b"pw"))  # doctest: +SKIP
    >>> signed.manifest_digest                                                 # doctest: +SKIP
    'sha256:4f8b…'
    >>> verify_model(Path("outputs"), Path("outputs/model.sig"), Path("k.pub"))  # doctest: +SKIP

The same file verifies with the library's own CLI:
``model_signing verify key outputs --signature outputs/model.sig --public_key k.pub``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolock._internal.jsonio import parse_json, read_json
from reprolock.errors import SignatureFileError, ToolError

#: the library's default signature name, inside the model directory
MODEL_SIGNATURE = "model.sig"
#: never part of the model: a cluster job's per-process run records live there
IGNORED = (".reprolock-runs",)
#: a bundle of a manifest of 100,000 files is about 15 MB
SIGNATURE_LIMIT = 64 << 20
RESIGN = "run again with --sign-key (or sign the directory with 'model_signing sign key')"


@dataclass(frozen=True)
class ModelKey:
    """The private key file and its passphrase, as ``reprolock keygen`` wrote them."""
    path: Path
    passphrase: bytes | None


@dataclass(frozen=True)
class SignedModel:
    signature: Path
    manifest_digest: str  # "sha256:…"
    files: int


def _ignored(directory: Path, signature: Path) -> list[Path]:
    """Relative to the model directory, as the library expects them."""
    extra = [signature.relative_to(directory)] if signature.is_relative_to(directory) else []
    return [*extra, *(Path(p) for p in IGNORED)]


def _hashing(directory: Path, signature: Path) -> Any:
    import model_signing

    return model_signing.hashing.Config().set_ignored_paths(  # type: ignore[no-untyped-call]
        paths=_ignored(directory, signature), ignore_git_paths=True)


def sign_model(directory: Path, key: ModelKey, signature: Path | None = None) -> SignedModel:
    """Sign every file of ``directory`` (less the signature and IGNORED) with ``key``."""
    import model_signing

    target = signature or directory / MODEL_SIGNATURE
    # model_signing 1.1 hands the password to cryptography as it is: it takes bytes
    # (a str, as its annotation says, is refused there), and the key stays encrypted on
    # disk: no unencrypted copy is written
    password: Any = key.passphrase
    try:
        config = model_signing.signing.Config()  # type: ignore[no-untyped-call]
        config.use_elliptic_key_signer(private_key=key.path, password=password)
        config.set_hashing_config(_hashing(directory, target))
        config.sign(directory, target)
    except (ValueError, TypeError, OSError) as exc:
        raise ToolError(f"model_signing could not sign {directory}: {exc}",
                        hint="the outputs must be regular files (no symbolic links) the "
                        "signer can read") from exc
    digest, files = manifest_digest(target)
    return SignedModel(target, digest, files)


def manifest_digest(signature: Path) -> tuple[str, int]:
    """The manifest digest a model signature names, and how many files it lists. Read,
    not verified: :func:`verify_model` first for a digest to trust."""
    bundle = read_json(signature, error=SignatureFileError, limit=SIGNATURE_LIMIT,
                       hint=f"{signature.name} is not a model signature; {RESIGN}")
    envelope = bundle.get("dsseEnvelope")
    raw = envelope.get("payload") if isinstance(envelope, dict) else None
    try:
        payload = base64.b64decode(raw if isinstance(raw, str) else "", validate=True)
    except (binascii.Error, ValueError):
        payload = b""
    statement = parse_json(payload or b"null", source=f"the payload of {signature.name}",
                           error=SignatureFileError, hint=RESIGN)
    subjects = statement.get("subject")
    subject = subjects[0] if isinstance(subjects, list) and len(subjects) == 1 else None
    digest = subject.get("digest") if isinstance(subject, dict) else None
    sha256 = digest.get("sha256") if isinstance(digest, dict) else None
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise SignatureFileError(f"{signature.name} names no model manifest digest (field "
                                 "subject[0].digest.sha256 of its payload)", hint=RESIGN)
    resources = (statement.get("predicate") or {}).get("resources")
    return "sha256:" + sha256.lower(), len(resources) if isinstance(resources, list) else 0


@dataclass(frozen=True)
class ModelFailure:
    """Which link failed: the files (the signature verifies, the files differ) or the
    signature itself; and the library's words."""
    link: str
    message: str


def verify_model(directory: Path, signature: Path, public_key: Path) -> ModelFailure | None:
    """The library's verification of ``signature`` over ``directory`` with ``public_key``;
    None when it passes, else which link broke."""
    import model_signing
    from cryptography.exceptions import InvalidSignature

    manifest_digest(signature)  # a file that is not a model signature at all: exit 2
    try:
        config = model_signing.verifying.Config()  # type: ignore[no-untyped-call]
        config.use_elliptic_key_verifier(public_key=public_key)
        config.set_hashing_config(_hashing(directory, signature))
        config.verify(directory, signature)
    except InvalidSignature:
        return ModelFailure("model-signature", f"{signature.name} is not signed by "
                            f"{public_key.name} (or was changed after signing)")
    except (ValueError, KeyError, TypeError, OSError) as exc:
        text = str(exc)
        if text.startswith("Signature mismatch"):
            # the library's list of differences, less its digest reprs
            found = re.findall(r"Hash mismatch for '[^']+'|(?:Extra|Missing) files[^\"\]]+",
                               text)
            return ModelFailure("model-files", "; ".join(found) or text)
        return ModelFailure("model-signature", text.strip())
    return None


__all__ = ["IGNORED", "MODEL_SIGNATURE", "ModelFailure", "ModelKey", "SignedModel",
           "manifest_digest", "sign_model", "verify_model"]
