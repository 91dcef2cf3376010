"""Keys, signed locks and DSSE envelopes, checked by an independent implementation of
the formats (plain `cryptography` calls here, not reprolock's functions) and against the
DSSE specification's published test vector."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from reprolock.errors import KeyFileError, VerificationError
from reprolock.signing.blob import verify_file
from reprolock.signing.dsse import check_subjects, pae, sign_envelope, verify_envelope
from reprolock.signing.keys import TrustedKey, load_signer, load_trusted
from tests.support.cli import run_cli

PASSWORD = "correct horse"


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    env = {**os.environ, "REPROLOCK_KEY_PASSWORD": PASSWORD}
    proc = run_cli("keygen", "-o", tmp_path / "release", env=env)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "release.key", tmp_path / "release.pub"


def test_keygen_writes_cosign_style_keys(keypair: tuple[Path, Path]) -> None:
    private, public = keypair
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    pem = private.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")  # encrypted PKCS#8
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    key = serialization.load_pem_private_key(pem, password=PASSWORD.encode())
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    pub = serialization.load_pem_public_key(public.read_bytes())
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")  # SPKI
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    assert load_trusted(public)[0].key_id == hashlib.sha256(der).hexdigest()


def test_keygen_refuses_to_overwrite(keypair: tuple[Path, Path]) -> None:
    private, _ = keypair
    before = private.read_bytes()
    proc = run_cli("keygen", "-o", private.with_suffix(""),
                   env={**os.environ, "REPROLOCK_KEY_PASSWORD": PASSWORD})
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert private.read_bytes() == before


def test_keygen_without_passphrase_or_terminal_is_an_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REPROLOCK_KEY_PASSWORD"}
    proc = run_cli("keygen", "-o", tmp_path / "k", env=env)
    assert proc.returncode == 2
    assert "REPROLOCK_KEY_PASSWORD" in proc.stderr
    assert not (tmp_path / "k.key").exists()


def test_signature_is_what_cosign_verify_blob_checks(keypair: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    private, public = keypair
    blob = tmp_path / "reprolock.lock.json"
    blob.write_text('{"lockVersion": 1}\n')
    signer = load_signer(private, passphrase=PASSWORD.encode())
    from reprolock.signing.blob import sign_file

    sig_path = sign_file(blob, signer)
    raw = base64.b64decode(sig_path.read_text())
    pub = serialization.load_pem_public_key(public.read_bytes())
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(raw, blob.read_bytes(), ec.ECDSA(hashes.SHA256()))  # DER over SHA-256


def test_any_flipped_byte_fails_verification(keypair: tuple[Path, Path],
                                             tmp_path: Path) -> None:
    private, public = keypair
    blob = tmp_path / "lock.json"
    original = json.dumps({"lockVersion": 1, "packages": ["x" * 40]}, indent=2).encode()
    blob.write_bytes(original)
    from reprolock.signing.blob import sign_file

    sign_file(blob, load_signer(private, passphrase=PASSWORD.encode()))
    trusted = load_trusted(public)
    verify_file(blob, trusted)
    for position in range(len(original)):  # every single byte
        flipped = bytearray(original)
        flipped[position] ^= 0x01
        blob.write_bytes(bytes(flipped))
        with pytest.raises(VerificationError):
            verify_file(blob, trusted)


def test_wrong_passphrase_and_wrong_key_types(keypair: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    private, _ = keypair
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_signer(private, passphrase=b"nope")
    p384 = ec.generate_private_key(ec.SECP384R1())
    other = tmp_path / "p384.key"
    other.write_bytes(p384.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"pw")))
    with pytest.raises(KeyFileError, match="not an ECDSA P-256 key"):
        load_signer(other, passphrase=b"pw")
    edpub = tmp_path / "ed.pub"
    edpub.write_bytes(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(KeyFileError, match="not an ECDSA P-256 public key"):
        load_trusted(edpub)


@pytest.mark.parametrize("content, message", [
    ("not base64 at all!", "not base64"),
    ("", "empty"),
    ("AAAA", "not a valid signature"),  # truncated
])
def test_bad_signature_files(keypair: tuple[Path, Path], tmp_path: Path, content: str,
                             message: str) -> None:
    _, public = keypair
    blob = tmp_path / "lock.json"
    blob.write_text("{}\n")
    (tmp_path / "lock.json.sig").write_text(content)
    with pytest.raises(VerificationError, match=message):
        verify_file(blob, load_trusted(public))


def test_trusted_key_directory(keypair: tuple[Path, Path], tmp_path: Path) -> None:
    _, public = keypair
    keys = tmp_path / "trusted"
    keys.mkdir()
    (keys / "a.pub").write_bytes(public.read_bytes())
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    (keys / "b.pub").write_bytes(other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert len(load_trusted(keys)) == 2


# -- DSSE ----------------------------------------------------------------------------------

SPEC_X = 46950820868899156662930047687818585632848591499744589407958293238635476079160
SPEC_Y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
SPEC_ENVELOPE = {
    "payload": "aGVsbG8gd29ybGQ=",
    "payloadType": "http://example.com/HelloWorld",
    "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJ"
                           "PcIAriEGAHTVeCUjW2JIZA=="}],
}


def _spec_key(tmp_path: Path) -> TrustedKey:
    pub = ec.EllipticCurvePublicNumbers(SPEC_X, SPEC_Y, ec.SECP256R1()).public_key()
    path = tmp_path / "spec.pub"
    path.write_bytes(pub.public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    return load_trusted(path)[0]


def test_pae_matches_the_specification() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_specification_test_vector_verifies(tmp_path: Path) -> None:
    key = _spec_key(tmp_path)
    verified = verify_envelope(SPEC_ENVELOPE, [key], payload_type="http://example.com/HelloWorld")
    assert verified.payload == b"hello world"
    # and the same check done by hand: raw r||s over the PAE
    raw = base64.b64decode(SPEC_ENVELOPE["signatures"][0]["sig"])  # type: ignore[index]
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.key.verify(der, b"DSSEv1 29 http://example.com/HelloWorld 11 hello world",
                   ec.ECDSA(hashes.SHA256()))
    tampered = {**SPEC_ENVELOPE, "payload": base64.b64encode(b"hello World").decode()}
    with pytest.raises(VerificationError):
        verify_envelope(tampered, [key], payload_type="http://example.com/HelloWorld")


def test_our_envelope_checks_out_independently(keypair: tuple[Path, Path]) -> None:
    private, public = keypair
    payload = json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": []}).encode()
    envelope = sign_envelope(payload, load_signer(private, passphrase=PASSWORD.encode()))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    body = base64.b64decode(envelope["payload"])
    message = b"DSSEv1 %d %s %d %s" % (len(envelope["payloadType"]),
                                       envelope["payloadType"].encode(), len(body), body)
    pub = serialization.load_pem_public_key(public.read_bytes())
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(base64.b64decode(envelope["signatures"][0]["sig"]), message,
               ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        pub.verify(base64.b64decode(envelope["signatures"][0]["sig"]), message + b" ",
                   ec.ECDSA(hashes.SHA256()))


def test_envelope_shapes_that_are_refused(keypair: tuple[Path, Path]) -> None:
    private, public = keypair
    trusted = load_trusted(public)
    envelope = sign_envelope(b'{"_type": "https://in-toto.io/Statement/v1"}',
                             load_signer(private, passphrase=PASSWORD.encode()))
    verify_envelope(envelope, trusted)
    with pytest.raises(VerificationError, match="no signature"):
        verify_envelope({**envelope, "signatures": []}, trusted)
    with pytest.raises(VerificationError, match="2 signatures"):
        verify_envelope({**envelope, "signatures": envelope["signatures"] * 2}, trusted)
    with pytest.raises(VerificationError, match="payloadType"):
        verify_envelope({**envelope, "payloadType": "application/json"}, trusted)
    with pytest.raises(VerificationError, match="not base64"):
        verify_envelope({**envelope, "payload": "%%%"}, trusted)


def test_subject_digests_are_checked() -> None:
    statement = {"subject": [{"name": "reprolock.lock.json", "digest": {"sha256": "ab" * 32}}]}
    check_subjects(statement, {"reprolock.lock.json": "sha256:" + "ab" * 32})
    with pytest.raises(VerificationError, match="has digest"):
        check_subjects(statement, {"reprolock.lock.json": "sha256:" + "cd" * 32})
    with pytest.raises(VerificationError, match="no subject"):
        check_subjects(statement, {"image": "sha256:" + "ab" * 32})


def test_a_signed_lock_in_a_subfolder_names_its_signature_where_it_is(
        keypair: tuple[Path, Path], make_project: Callable[..., Path]) -> None:
    """The files to commit are named as the config names the lock: locks/…, .sig beside."""
    root = make_project(extra='lockfile = "locks/reprolock.lock.json"')
    (root / "locks").mkdir()
    env = {**os.environ, "REPROLOCK_KEY_PASSWORD": PASSWORD}
    proc = run_cli("lock", "-C", root, "--no-build", "--json", "--sign-key", keypair[0],
                   env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["commit"] == ["locks/reprolock.lock.json",
                                                 "locks/reprolock.lock.json.sig",
                                                 "locks/reprolock.lock.json.sigstore.json"]
    assert (root / "locks" / "reprolock.lock.json.sig").is_file()
    assert (root / "locks" / "reprolock.lock.json.sigstore.json").is_file()
