"""Sigstore bundles v0.3 beside reprolock's signatures (issue 16, "Bundles").

Each bundle is written by real signing with a generated key, then read by the Sigstore
project's own Python models (``sigstore_models``, which ``sigstore`` itself parses
bundles with) and checked with plain ``cryptography`` calls, not reprolock's functions.
``sigstore.models.Bundle`` (sigstore-python's verifying loader) refuses every bundle
without a certificate: key-based bundles are parsed one level down, as the test of that
refusal records. cosign is not installable here, so cosign itself never reads them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import sigstore.dsse
import sigstore.models
import sigstore_models.bundle.v1
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reprolock.signing.bundle import BUNDLE_MEDIA_TYPE, sign_blob, write_envelope_bundle
from reprolock.signing.dsse import sign_envelope
from reprolock.signing.keys import LocalSigner, generate_keypair, load_signer, load_trusted
from tests.support.buildproject import cli, copy_project
from tests.test_verify import _record  # the one valid run record of a project

PASSWORD = "pw"
ENV = {"REPROLOCK_KEY_PASSWORD": PASSWORD}


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "release", passphrase=PASSWORD.encode())


def _signer(private: Path) -> LocalSigner:
    return load_signer(private, passphrase=PASSWORD.encode())


def _public(path: Path) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def _key_id(path: Path) -> str:
    der = _public(path).public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 PAE, written out here from the specification."""
    kind = payload_type.encode()
    return b"DSSEv1 " + b" ".join([str(len(kind)).encode(), kind,
                                   str(len(payload)).encode(), payload])


# -- the formats, read by Sigstore's models ---------------------------------------------

def test_the_lock_bundle_is_a_sigstore_message_signature_bundle(
        key: tuple[Path, Path], tmp_path: Path) -> None:
    private, public = key
    lock = tmp_path / "reprolock.lock.json"
    lock.write_bytes(b'{"lockVersion": 1}\n')
    signed = sign_blob(lock, _signer(private))
    assert signed.bundle == tmp_path / "reprolock.lock.json.sigstore.json"
    assert signed.signature == tmp_path / "reprolock.lock.json.sig"

    bundle = sigstore_models.bundle.v1.Bundle.from_json(signed.bundle.read_bytes())
    assert bundle.media_type == BUNDLE_MEDIA_TYPE == "application/vnd.dev.sigstore.bundle.v0.3+json"
    material = bundle.verification_material
    assert material.public_key is not None and material.public_key.hint == _key_id(public)
    assert material.tlog_entries == [] and material.certificate is None
    assert bundle.dsse_envelope is None and bundle.message_signature is not None
    message = bundle.message_signature
    assert message.message_digest is not None
    assert message.message_digest.algorithm.value == "SHA2_256"
    assert message.message_digest.digest == hashlib.sha256(lock.read_bytes()).digest()
    # cosign's verify-blob check: DER ECDSA over SHA-256 of the file's exact bytes
    _public(public).verify(message.signature, lock.read_bytes(), ec.ECDSA(hashes.SHA256()))
    # the same signature as the older .sig file: signed once, written twice
    assert base64.b64decode(signed.signature.read_text()) == message.signature


def test_sigstore_python_refuses_key_based_bundles(key: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    """sigstore 4.x ``Bundle`` wants a Fulcio certificate (then exactly one tlog entry):
    it says exactly this, so key-based bundles are parsed with ``sigstore_models``."""
    lock = tmp_path / "reprolock.lock.json"
    lock.write_bytes(b"{}\n")
    signed = sign_blob(lock, _signer(key[0]))
    with pytest.raises(sigstore.models.InvalidBundle, match=r"^expected certificate in bundle$"):
        sigstore.models.Bundle.from_json(signed.bundle.read_bytes())


def test_a_dsse_bundle_is_a_sigstore_dsse_bundle(key: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    private, public = key
    statement = {"_type": "https://in-toto.io/Statement/v1", "predicateType": "x",
                 "subject": [{"name": "a", "digest": {"sha256": "0" * 64}}], "predicate": {}}
    payload = json.dumps(statement).encode()
    envelope = sign_envelope(payload, _signer(private))
    path = write_envelope_bundle(envelope, tmp_path / "build.dsse.json", _signer(private))
    assert path == tmp_path / "build.sigstore.json"

    bundle = sigstore_models.bundle.v1.Bundle.from_json(path.read_bytes())
    assert bundle.media_type == BUNDLE_MEDIA_TYPE and bundle.message_signature is None
    dsse = bundle.dsse_envelope
    assert dsse is not None and dsse.payload == payload
    assert dsse.payload_type == "application/vnd.in-toto+json"
    assert len(dsse.signatures) == 1 and dsse.signatures[0].keyid == _key_id(public)
    assert bundle.verification_material.public_key.hint == _key_id(public)
    # ECDSA over the PAE, computed here from the DSSE specification ...
    _public(public).verify(dsse.signatures[0].sig, _pae(dsse.payload_type, dsse.payload),
                           ec.ECDSA(hashes.SHA256()))
    # ... and by sigstore-python's own DSSE code (a private function: no public API
    # verifies a DSSE envelope with a bare key)
    assert sigstore.dsse._verify(_public(public), sigstore.dsse.Envelope(dsse)) == payload


# -- sign, lock --sign-key, verify: the lock ------------------------------------------------

@pytest.fixture
def project(build_project_template: Path, tmp_path: Path) -> Path:
    return copy_project(build_project_template, tmp_path / "p")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundles-cache")


def _verify(project: Path, cache: Path, *args: str | Path) -> tuple[int, dict[str, Any]]:
    proc = cli("verify", "-C", project, "--json", "--no-rebuild", *args, cache=cache)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def _flip_bundle(path: Path, what: str) -> None:
    """Flip one bit of the bundle's signature (``sig``) or DSSE payload (``payload``),
    the JSON left valid."""
    doc = json.loads(path.read_text())
    if "messageSignature" in doc:
        holder, name = doc["messageSignature"], "signature"
    elif what == "sig":
        holder, name = doc["dsseEnvelope"]["signatures"][0], "sig"
    else:
        holder, name = doc["dsseEnvelope"], "payload"
    raw = bytearray(base64.b64decode(holder[name]))
    raw[len(raw) // 2] ^= 0x01
    holder[name] = base64.b64encode(bytes(raw)).decode()
    path.write_text(json.dumps(doc))


def _duplicate_key(path: Path) -> None:
    text = path.read_text()
    path.write_text(text.replace('"mediaType"', '"mediaType": "x", "mediaType"', 1))


def test_sign_writes_a_bundle_and_verify_checks_it(project: Path, cache: Path,
                                                   key: tuple[Path, Path]) -> None:
    private, public = key
    assert cli("sign", private, "-C", project, cache=cache, env=ENV).returncode == 0
    lock = project / "reprolock.lock.json"
    bundle, sig = project / "reprolock.lock.json.sigstore.json", project / "reprolock.lock.json.sig"
    assert sigstore_models.bundle.v1.Bundle.from_json(bundle.read_bytes()).message_signature
    code, report = _verify(project, cache, "--key", public)
    detail = _check(report, "signature")["detail"]
    assert code == 0 and f"{bundle.name} and {sig.name} verify" in detail, report

    saved = bundle.read_bytes()
    _flip_bundle(bundle, "sig")
    code, report = _verify(project, cache, "--key", public)
    assert code == 1 and _check(report, "signature")["detail"].startswith(
        f"{bundle.name} is not a valid signature of {lock.name}"), report
    bundle.write_bytes(saved)

    sig.unlink()  # the bundle alone is enough
    code, report = _verify(project, cache, "--key", public)
    assert code == 0 and f"{bundle.name} verifies" in _check(report, "signature")["detail"]

    original = lock.read_bytes()
    lock.write_bytes(original.replace(b'"direct": true', b'"direct": false', 1))
    code, report = _verify(project, cache, "--key", public)
    assert code == 1 and _check(report, "signature")["detail"] == (
        f"{bundle.name} is not a valid signature of {lock.name} by a trusted key "
        f"({public.name})"), report
    lock.write_bytes(original)

    doc = json.loads(bundle.read_text())  # the digest is not signed, but must match
    doc["messageSignature"]["messageDigest"]["digest"] = base64.b64encode(b"\0" * 32).decode()
    bundle.write_text(json.dumps(doc))
    code, report = _verify(project, cache, "--key", public)
    assert code == 1 and _check(report, "signature")["detail"] == (
        f"{bundle.name}'s messageDigest is not the SHA-256 of {lock.name}"), report
    bundle.write_bytes(saved)

    _duplicate_key(bundle)
    proc = cli("verify", "-C", project, "--no-rebuild", "--key", public, cache=cache)
    assert proc.returncode == 2 and bundle.name in proc.stderr
    assert 'has the key "mediaType" twice' in proc.stderr, proc.stderr


def test_a_bundle_that_fails_fails_beside_a_good_sig(project: Path, cache: Path,
                                                     key: tuple[Path, Path]) -> None:
    from reprolock.signing.blob import sign_file

    private, public = key
    lock = project / "reprolock.lock.json"
    other = generate_keypair(project.parent / "other", passphrase=b"x")
    sign_blob(lock, load_signer(other[0], passphrase=b"x"))  # both files, another key
    sign_file(lock, _signer(private))  # the .sig again, by the trusted key
    code, report = _verify(project, cache, "--key", public)
    assert code == 1 and _check(report, "signature")["detail"].startswith(
        "reprolock.lock.json.sigstore.json is not a valid signature of reprolock.lock.json "
        f"by a trusted key ({public.name})"), report


# -- build provenance -----------------------------------------------------------------------

def test_build_and_lock_write_bundles_that_verify(project: Path, cache: Path,
                                                  key: tuple[Path, Path]) -> None:
    private, public = key
    assert cli("lock", "-C", project, "--sign-key", private, cache=cache,
               env=ENV).returncode == 0
    assert (project / "reprolock.lock.json.sigstore.json").is_file()
    out = project.parent / "out"
    proc = cli("build", "-C", project, "-o", f"oci:{out}:v1", "--sign-key", private,
               cache=cache, env=ENV)
    assert proc.returncode == 0, proc.stderr
    envelope = project / ".reprolock" / "build.dsse.json"
    bundle = project / ".reprolock" / "build.sigstore.json"
    assert "build.sigstore.json" in proc.stderr + proc.stdout
    parsed = sigstore_models.bundle.v1.Bundle.from_json(bundle.read_bytes())
    assert parsed.dsse_envelope is not None
    legacy = json.loads(envelope.read_text())
    assert parsed.dsse_envelope.payload == base64.b64decode(legacy["payload"])
    _public(public).verify(parsed.dsse_envelope.signatures[0].sig,
                           _pae(parsed.dsse_envelope.payload_type, parsed.dsse_envelope.payload),
                           ec.ECDSA(hashes.SHA256()))

    code, report = _verify(project, cache, "--key", public, "--attestation", envelope)
    assert code == 0 and f"{bundle.name} and {envelope.name} verify" in _check(
        report, "provenance")["detail"], report
    image = cli("verify", "-C", project, "--json", "--image", f"oci:{out}:v1", "--key", public,
                cache=cache)
    assert image.returncode == 0, image.stdout + image.stderr
    assert f"{bundle.name} and {envelope.name} verify" in _check(
        json.loads(image.stdout), "provenance")["detail"]

    saved = bundle.read_bytes()
    _flip_bundle(bundle, "payload")
    code, report = _verify(project, cache, "--key", public, "--attestation", envelope)
    assert code == 1 and _check(report, "provenance")["detail"] == (
        f"{bundle.name}: the envelope's signature is not valid for any trusted key "
        f"({public.name})"), report
    bundle.write_bytes(saved)

    envelope.unlink()  # the bundle alone is enough
    code, report = _verify(project, cache, "--key", public, "--attestation", envelope)
    assert code == 0 and f"({bundle.name} verifies)" in _check(report, "provenance")["detail"]
    code, report = _verify(project, cache, "--key", public, "--attestation", bundle)
    assert code == 0, report


# -- run records ---------------------------------------------------------------------------

def test_a_signed_run_record_has_a_bundle_that_verifies(project: Path, cache: Path,
                                                        key: tuple[Path, Path]) -> None:
    from reprolock.workflows.run import sign_record

    private, public = key
    assert cli("sign", private, "-C", project, cache=cache, env=ENV).returncode == 0
    record = project.parent / "run.json"
    doc = _record(project)
    record.write_text(json.dumps(doc))
    envelope = sign_record(doc, record, _signer(private))
    bundle = record.with_name("run.sigstore.json")
    assert envelope == record.with_name("run.dsse.json")
    parsed = sigstore_models.bundle.v1.Bundle.from_json(bundle.read_bytes())
    assert parsed.dsse_envelope is not None
    statement = json.loads(parsed.dsse_envelope.payload)
    assert statement["predicate"] == doc
    _public(public).verify(parsed.dsse_envelope.signatures[0].sig,
                           _pae(parsed.dsse_envelope.payload_type, parsed.dsse_envelope.payload),
                           ec.ECDSA(hashes.SHA256()))

    code, report = _verify(project, cache, "--run", record, "--key", public)
    assert code == 0 and "run.sigstore.json and run.dsse.json verify" in _check(
        report, "signature")["detail"], report

    saved = bundle.read_bytes()
    _flip_bundle(bundle, "sig")
    code, report = _verify(project, cache, "--run", record, "--key", public)
    assert code == 1 and _check(report, "signature")["detail"].startswith(
        "run.sigstore.json: the envelope's signature is not valid"), report
    bundle.write_bytes(saved)

    # a bundle of another record, signed by the same key, fails too
    sign_record({**doc, "command": ["python", "other.py"]}, record, _signer(private))
    stale = bundle.read_bytes()
    sign_record(doc, record, _signer(private))
    bundle.write_bytes(stale)
    code, report = _verify(project, cache, "--run", record, "--key", public)
    assert code == 1 and _check(report, "signature")["detail"] == (
        "run.json differs from the record signed in run.sigstore.json"), report
    sign_record(doc, record, _signer(private))

    envelope.unlink()  # the bundle alone is enough
    code, report = _verify(project, cache, "--run", record, "--key", public)
    assert code == 0 and "; run.sigstore.json verifies)" in _check(report, "signature")["detail"]

    _duplicate_key(bundle)
    proc = cli("verify", "-C", project, "--run", record, "--key", public, cache=cache)
    assert proc.returncode == 2 and "run.sigstore.json" in proc.stderr, proc.stderr
    assert load_trusted(public)[0].key_id == _key_id(public)  # the hint is reprolock's id


def test_signing_the_lock_leaves_the_code_tree_alone(project: Path, cache: Path,
                                                     key: tuple[Path, Path]) -> None:
    """The lock's bundle is never code, as its .sig is not: signing after a build must not
    make 'verify --image' or 'verify --run' see another code tree."""
    from reprolock.config import load_config
    from reprolock.inspection.codeset import collect_code

    before = collect_code(load_config(project)).tree_digest
    assert cli("sign", key[0], "-C", project, cache=cache, env=ENV).returncode == 0
    assert (project / "reprolock.lock.json.sigstore.json").is_file()
    assert collect_code(load_config(project)).tree_digest == before
