"""Keyless signing through Sigstore: an ephemeral key, a short-lived certificate from Fulcio
for an OIDC identity, and an entry in the Rekor transparency log, made by sigstore-python's
own :class:`sigstore.sign.SigningContext` (nothing of the protocol is done by hand here).

The identity token comes from ``--identity-token-file``, ``REPROLOCK_OIDC_TOKEN`` or a CI
system's ambient credentials (GitHub Actions, GitLab CI, Buildkite, Google Cloud: what
:func:`sigstore.oidc.detect_credential` finds). reprolock never opens a browser for an
interactive OIDC flow: it runs in CI and on clusters, where nobody is there to click;
``python -m sigstore`` can fetch a token interactively where one is wanted.

    >>> signer = keyless_signer(token_file=None)                      # doctest: +SKIP
    >>> signature = signer.sign(Path("reprolock.lock.json").read_bytes())  # doctest: +SKIP
    >>> write_sigstore_bundle(Path("reprolock.lock.json.sigstore.json"), signer)  # doctest: +SKIP

:class:`KeylessSigner` is a :class:`Signer`, so the workflows sign with it as with a key:
its ``sign`` returns the very signature held in sigstore's bundle (ECDSA P-256 over SHA-256
of the file; over the DSSE PAE of a statement), so the ``.sig`` and ``.dsse.json`` files
are the bundle's signature too. The bundle that the workflows write with a public-key hint
is then replaced by sigstore's own (:func:`write_sigstore_bundle`): its verification
material is the certificate and the Rekor entry, which only sigstore's verifier checks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from reprolock._internal.jsonio import read_bounded
from reprolock.errors import KeylessError
from reprolock.signing.interface import Signer

if TYPE_CHECKING:
    from sigstore.models import Bundle, ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import Signer as SigstoreSigner
    from sigstore.sign import SigningContext

TOKEN_ENV = "REPROLOCK_OIDC_TOKEN"
INSTANCE_ENV = "REPROLOCK_SIGSTORE_INSTANCE"
#: "1": use the trust root sigstore-python ships (or last fetched) without a TUF refresh
OFFLINE_ENV = "REPROLOCK_SIGSTORE_OFFLINE"
INSTANCES = {"production": "https://tuf-repo-cdn.sigstore.dev",
             "staging": "https://tuf-repo-cdn.sigstage.dev"}
#: an OIDC token (a JWT) is a few kilobytes; a larger file is not one
TOKEN_LIMIT = 64 << 10
TOKEN_HINT = (f"in CI, let the job mint one (GitHub Actions: 'permissions: id-token: write'; "
              f"GitLab: an id_tokens entry with aud 'sigstore'); elsewhere set {TOKEN_ENV} "
              "or pass --identity-token-file FILE (e.g. from 'python -m sigstore "
              "get-identity-token')")


# -- which Sigstore -----------------------------------------------------------------------

@dataclass(frozen=True)
class Instance:
    name: str  # production or staging
    tuf_url: str
    offline: bool  # no TUF refresh: the trust root already on this machine

    @classmethod
    def from_env(cls) -> Instance:
        name = os.environ.get(INSTANCE_ENV, "production") or "production"
        if name not in INSTANCES:
            raise KeylessError(f"{INSTANCE_ENV}={name!r} is not a Sigstore instance "
                               "reprolock knows", hint=f"set it to {' or '.join(INSTANCES)}")
        return cls(name, INSTANCES[name], os.environ.get(OFFLINE_ENV, "") == "1")

    def trust_config(self) -> ClientTrustConfig:
        """The instance's trust root and signing config, through TUF (network unless
        offline): the first thing keyless signing or verification needs."""
        from sigstore.models import ClientTrustConfig

        # sigstore logs its progress (e.g. "loaded in offline mode", which the user asked
        # for) through logging with no handler: Python's last resort prints it to stderr
        logging.getLogger("sigstore").addHandler(logging.NullHandler())
        with service(f"the {self.name} TUF repository", self.tuf_url):
            if self.name == "staging":
                return ClientTrustConfig.staging(offline=self.offline)
            return ClientTrustConfig.production(offline=self.offline)


@contextmanager
def service(name: str, url: str) -> Iterator[None]:
    """A failure to talk to one Sigstore service as one paragraph naming it; sigstore's
    own diagnostics span many lines and requests' errors carry a traceback's worth."""
    import requests
    from sigstore.errors import Error

    try:
        yield
    except (Error, requests.RequestException, OSError) as exc:
        raise KeylessError(f"keyless signing could not reach {name} ({url}): {_reason(exc)}",
                           hint="keyless signing needs network access to Sigstore's TUF "
                           "repository, Fulcio and Rekor; use --sign-key KEY where there "
                           f"is none (or {OFFLINE_ENV}=1 to verify with the trust root "
                           "already here)") from exc


def _reason(exc: BaseException) -> str:
    """The chain of causes, one line each, deduplicated and bounded."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        text = re.sub(r"\s+", " ", str(seen)).strip() or type(seen).__name__
        if not any(text in part for part in parts):  # requests repeats its causes
            parts.append(text)
        seen = seen.__cause__ or seen.__context__
    joined = "; ".join(parts)
    return joined if len(joined) <= 600 else joined[:597] + "..."


# -- the identity -------------------------------------------------------------------------

def identity_token(token_file: Path | None) -> IdentityToken:
    """The OIDC token to sign as: the file, else REPROLOCK_OIDC_TOKEN, else the CI's."""
    from sigstore.oidc import IdentityError, IdentityToken, detect_credential

    if token_file is not None:
        raw, source = read_bounded(token_file, limit=TOKEN_LIMIT, error=KeylessError,
                                   hint=TOKEN_HINT).decode("ascii", "replace"), str(token_file)
    elif os.environ.get(TOKEN_ENV):
        raw, source = os.environ[TOKEN_ENV], TOKEN_ENV
    else:
        try:
            raw, source = detect_credential() or "", "the CI's ambient credentials"
        except IdentityError as exc:
            raise KeylessError(f"the CI's ambient OIDC credentials could not be read: "
                               f"{_reason(exc)}", hint=TOKEN_HINT) from exc
    if not raw.strip():
        raise KeylessError("--keyless needs an OIDC identity token, and none was found "
                           f"(no --identity-token-file, no {TOKEN_ENV}, no CI credentials)",
                           hint=TOKEN_HINT)
    try:
        return IdentityToken(raw.strip())
    except IdentityError as exc:
        raise KeylessError(f"the identity token from {source} is not one Sigstore accepts: "
                           f"{_reason(exc)}", hint="use a current token with audience "
                           f"'sigstore'; {TOKEN_HINT}") from exc


# -- the signer ---------------------------------------------------------------------------

class KeylessSigner(Signer):
    """Signs through Fulcio and Rekor; keeps each signature's bundle to be written."""

    def __init__(self, context: SigningContext, token: IdentityToken) -> None:
        self._context, self._token = context, token
        self._signer: SigstoreSigner | None = None
        self._bundles: dict[bytes, Bundle] = {}

    @property
    def identity(self) -> str:
        return self._token.identity

    def _sigstore(self) -> SigstoreSigner:
        """sigstore's signer, made once: its ephemeral key and certificate (one Fulcio
        request) sign everything this command signs."""
        if self._signer is None:
            from sigstore.sign import Signer as SigstoreSigner

            with service("Fulcio, Sigstore's certificate authority",
                         _url(self._context._fulcio)):
                self._signer = SigstoreSigner(self._token, self._context)
        return self._signer

    @property
    def key_id(self) -> str:
        """sha256 of the ephemeral public key's DER: the key only this certificate names."""
        key = self._sigstore()._private_key.public_key()
        der = key.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(der).hexdigest()

    def sign(self, data: bytes) -> bytes:
        """The workflows hand a file's bytes, or a statement's DSSE PAE: the PAE is signed
        as sigstore signs an in-toto statement (a DSSE bundle, a ``dsse`` Rekor entry),
        anything else as an artifact (a message-signature bundle, a ``hashedrekord``)."""
        from sigstore.dsse import Statement

        signer = self._sigstore()
        statement = _pae_payload(data)
        with service("Rekor, Sigstore's transparency log", _url(self._context._rekor)):
            bundle = (signer.sign_dsse(Statement(statement)) if statement is not None
                      else signer.sign_artifact(data))
        self._bundles[bundle.signature] = bundle
        return bundle.signature

    def issued_bundle(self, signature: bytes) -> str | None:
        bundle = self._bundles.get(signature)
        return None if bundle is None else bundle.to_json()


def _pae_payload(data: bytes) -> bytes | None:
    """The in-toto payload of a DSSE PAE (``DSSEv1 LEN TYPE LEN PAYLOAD``), or None."""
    match = re.match(rb"DSSEv1 (\d{1,9}) ", data)
    if match is None:
        return None
    kind_end = match.end() + int(match[1])
    kind = data[match.end():kind_end]
    rest = re.match(rb" (\d{1,12}) ", data[kind_end:])
    if kind != b"application/vnd.in-toto+json" or rest is None:
        return None
    payload = data[kind_end + rest.end():]
    return payload if len(payload) == int(rest[1]) else None


def keyless_signer(token_file: Path | None) -> KeylessSigner:
    """The token first (no network: a missing one fails at once), then the trust root
    (TUF), before any work is done; Fulcio is asked at the first signature."""
    from sigstore.sign import SigningContext

    token = identity_token(token_file)
    config = Instance.from_env().trust_config()
    return KeylessSigner(SigningContext.from_trust_config(config), token)


def _url(client: object) -> str:
    """A sigstore client's endpoint, to name in an error (its attribute is not public)."""
    return str(getattr(client, "url", None) or getattr(client, "base_url", "?"))


__all__ = ["INSTANCES", "INSTANCE_ENV", "OFFLINE_ENV", "TOKEN_ENV", "Instance",
           "KeylessSigner", "identity_token", "keyless_signer", "service"]
