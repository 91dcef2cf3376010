"""Keyless signing (--keyless) and keyless verification (--certificate-identity) up to the
network: this machine reaches no Sigstore service, so each test runs reprolock and
sigstore-python's real code until the first request (TUF, Fulcio) and checks that the
request was made and failed as one paragraph naming the service, exit 2. Nothing of
sigstore is stubbed: the only fake is the identity token (a well-formed, unsigned JWT,
which sigstore-python does not verify either: Fulcio would)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from reprolock.signing.dsse import pae
from reprolock.signing.keyless import _pae_payload
from tests.support.buildproject import cli, copy_project

ISSUER = "https://token.actions.githubusercontent.com"
IDENTITY = "https://github.com/o/r/.github/workflows/ci.yml@refs/heads/main"


def _jwt(**claims: object) -> str:
    """An unsigned JWT with the claims sigstore-python requires of an OIDC token."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "sigstore", "sub": IDENTITY, "iat": now, "nbf": now,
            "exp": now + 600, **claims}

    def part(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(body)}.c2ln"


@pytest.fixture
def project(build_project_template: Path, tmp_path: Path) -> Path:
    return copy_project(build_project_template, tmp_path / "p")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No token, no CI credentials; sigstore's TUF cache in the test's directory."""
    return {"REPROLOCK_OIDC_TOKEN": "", "GITHUB_ACTIONS": "", "GITLAB_CI": "",
            "BUILDKITE": "", "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"), "REPROLOCK_SIGSTORE_OFFLINE": "",
            "REPROLOCK_SIGSTORE_INSTANCE": ""}


def _paragraph(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().count("\n") <= 1, stderr  # the message and its fix


# -- signing ------------------------------------------------------------------------------

def test_no_token_exits_2_naming_how_to_provide_one(project: Path, tmp_path: Path,
                                                    env: dict[str, str]) -> None:
    proc = cli("sign", "--keyless", "-C", project, cache=tmp_path / "c", env=env)
    assert proc.returncode == 2, proc.stderr
    _paragraph(proc.stderr)
    assert "needs an OIDC identity token" in proc.stderr
    assert "REPROLOCK_OIDC_TOKEN" in proc.stderr and "--identity-token-file" in proc.stderr
    assert "id-token: write" in proc.stderr
    assert not (project / "reprolock.lock.json.sig").exists()


def test_a_token_sigstore_refuses_is_named(project: Path, tmp_path: Path,
                                           env: dict[str, str]) -> None:
    token = tmp_path / "token"
    token.write_text(_jwt(exp=int(time.time()) - 3600))  # expired
    proc = cli("sign", "--keyless", "--identity-token-file", token, "-C", project,
               cache=tmp_path / "c", env=env)
    assert proc.returncode == 2, proc.stderr
    _paragraph(proc.stderr)
    assert f"identity token from {token} is not one Sigstore accepts" in proc.stderr


def test_fake_token_reaches_tuf_and_fails_as_one_paragraph(project: Path, tmp_path: Path,
                                                           env: dict[str, str]) -> None:
    proc = cli("sign", "--keyless", "-C", project, cache=tmp_path / "c",
               env={**env, "REPROLOCK_OIDC_TOKEN": _jwt()})
    assert proc.returncode == 2, proc.stderr
    _paragraph(proc.stderr)
    assert "could not reach the production TUF repository" in proc.stderr
    assert "tuf-repo-cdn.sigstore.dev" in proc.stderr  # the request was made, to TUF
    assert not (project / "reprolock.lock.json.sigstore.json").exists()


def test_staging_instance_asks_staging_tuf(project: Path, tmp_path: Path,
                                           env: dict[str, str]) -> None:
    proc = cli("sign", "--keyless", "-C", project, cache=tmp_path / "c",
               env={**env, "REPROLOCK_OIDC_TOKEN": _jwt(),
                    "REPROLOCK_SIGSTORE_INSTANCE": "staging"})
    assert proc.returncode == 2, proc.stderr
    assert "tuf-repo-cdn.sigstage.dev" in proc.stderr


def test_unknown_instance_is_a_usage_error(project: Path, tmp_path: Path,
                                           env: dict[str, str]) -> None:
    proc = cli("sign", "--keyless", "-C", project, cache=tmp_path / "c",
               env={**env, "REPROLOCK_OIDC_TOKEN": _jwt(),
                    "REPROLOCK_SIGSTORE_INSTANCE": "prod"})
    assert proc.returncode == 2, proc.stderr
    assert "REPROLOCK_SIGSTORE_INSTANCE='prod'" in proc.stderr


def test_with_the_trust_root_here_the_request_goes_to_fulcio(project: Path, tmp_path: Path,
                                                             env: dict[str, str]) -> None:
    """With the trust root sigstore-python ships (no TUF refresh), signing goes one step
    further: the signing config names Fulcio, and the certificate request is sent there."""
    proc = cli("sign", "--keyless", "-C", project, cache=tmp_path / "c",
               env={**env, "REPROLOCK_OIDC_TOKEN": _jwt(), "REPROLOCK_SIGSTORE_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr
    _paragraph(proc.stderr)
    assert "could not reach Fulcio" in proc.stderr
    assert "fulcio.sigstore.dev" in proc.stderr
    assert not (project / "reprolock.lock.json.sigstore.json").exists()


@pytest.mark.parametrize("command", [["sign", "KEY"], ["lock"], ["build"], ["run"]])
def test_keyless_and_sign_key_together_exit_2(project: Path, tmp_path: Path,
                                              env: dict[str, str], command: list[str]) -> None:
    key = tmp_path / "k.key"
    key.write_text("not read: the flags are refused first")
    args = [a if a != "KEY" else str(key) for a in command]
    if command != ["sign", "KEY"]:
        args += ["--sign-key", str(key)]
    proc = cli(*args, "--keyless", "-C", project, cache=tmp_path / "c",
               env={**env, "REPROLOCK_OIDC_TOKEN": _jwt()})
    assert proc.returncode == 2, proc.stderr
    _paragraph(proc.stderr)
    assert "--keyless and --sign-key both given" in proc.stderr


def test_token_file_without_keyless_exits_2(project: Path, tmp_path: Path,
                                            env: dict[str, str]) -> None:
    proc = cli("lock", "--identity-token-file", tmp_path / "t", "-C", project,
               cache=tmp_path / "c", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "--identity-token-file is for --keyless" in proc.stderr


def test_sign_needs_a_key_or_keyless(project: Path, tmp_path: Path,
                                     env: dict[str, str]) -> None:
    proc = cli("sign", "-C", project, cache=tmp_path / "c", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "sign needs a private key or --keyless" in proc.stderr


def test_pae_is_read_back_only_when_exact() -> None:
    payload = b'{"_type":"https://in-toto.io/Statement/v1"}'
    assert _pae_payload(pae("application/vnd.in-toto+json", payload)) == payload
    assert _pae_payload(pae("application/vnd.in-toto+json", payload)[:-1]) is None
    assert _pae_payload(pae("text/plain", payload)) is None
    assert _pae_payload(b'{"lockVersion": 1}') is None


# -- verifying ----------------------------------------------------------------------------

def _verify(project: Path, tmp_path: Path, env: dict[str, str], *args: str | Path):  # type: ignore[no-untyped-def]
    return cli("verify", "-C", project, "--no-rebuild", *args, cache=tmp_path / "c", env=env)


def test_verify_identity_needs_its_issuer(project: Path, tmp_path: Path,
                                          env: dict[str, str]) -> None:
    proc = _verify(project, tmp_path, env, "--certificate-identity", IDENTITY)
    assert proc.returncode == 2, proc.stderr
    _paragraph(proc.stderr)
    assert "go together" in proc.stderr


def test_verify_identity_is_not_mixed_with_key(project: Path, tmp_path: Path,
                                               env: dict[str, str]) -> None:
    proc = _verify(project, tmp_path, env, "--certificate-identity", IDENTITY,
                   "--certificate-oidc-issuer", ISSUER, "--key", tmp_path / "x.pub")
    assert proc.returncode == 2, proc.stderr
    assert "not with --key" in proc.stderr


def test_verify_unsigned_lock_is_a_finding(project: Path, tmp_path: Path,
                                           env: dict[str, str]) -> None:
    proc = _verify(project, tmp_path, env, "--json", "--certificate-identity", IDENTITY,
                   "--certificate-oidc-issuer", ISSUER)
    assert proc.returncode == 1, proc.stderr
    check = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "signature")
    assert not check["ok"] and "is not signed keylessly" in check["detail"]


def test_verify_key_based_bundle_is_not_a_keyless_one(project: Path, tmp_path: Path,
                                                      env: dict[str, str]) -> None:
    """A bundle made with --sign-key parses with sigstore's models but holds no
    certificate: a finding, before any network."""
    pw = {**env, "REPROLOCK_KEY_PASSWORD": "pw"}
    assert cli("keygen", "-o", tmp_path / "k", cache=tmp_path / "c", env=pw).returncode == 0
    assert cli("sign", tmp_path / "k.key", "-C", project, cache=tmp_path / "c",
               env=pw).returncode == 0
    proc = _verify(project, tmp_path, env, "--json", "--certificate-identity", IDENTITY,
                   "--certificate-oidc-issuer", ISSUER)
    assert proc.returncode == 1, proc.stderr
    check = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "signature")
    assert "is not a keyless Sigstore bundle" in check["detail"], check


def test_verify_keyless_bundle_reaches_tuf(project: Path, tmp_path: Path,
                                           env: dict[str, str]) -> None:
    """A bundle with a certificate (sigstore's own test asset, over another file) is read
    with sigstore's models; the trust root is then asked of TUF: exit 2 naming it."""
    bundle = project / "reprolock.lock.json.sigstore.json"
    bundle.write_text(KEYLESS_BUNDLE)
    proc = _verify(project, tmp_path, env, "--certificate-identity", IDENTITY,
                   "--certificate-oidc-issuer", ISSUER)
    assert proc.returncode == 2, proc.stderr
    _paragraph(proc.stderr)
    assert "tuf-repo-cdn.sigstore.dev" in proc.stderr


def test_verify_keyless_bundle_offline_checks_it(project: Path, tmp_path: Path,
                                                 env: dict[str, str]) -> None:
    """With the trust root here, sigstore's Verifier runs in full and refuses a bundle
    that is not over this lock: a finding (exit 1), not an error."""
    (project / "reprolock.lock.json.sigstore.json").write_text(KEYLESS_BUNDLE)
    proc = _verify(project, tmp_path, {**env, "REPROLOCK_SIGSTORE_OFFLINE": "1"}, "--json",
                   "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER)
    assert proc.returncode == 1, proc.stderr
    check = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "signature")
    assert not check["ok"] and "does not verify as signed by" in check["detail"], check


#: sigstore-python's test/assets/staging-rekor-v2.txt.sigstore.json (a message-signature
#: bundle with a Fulcio certificate for jku@goto.fi, a Rekor v2 entry, an RFC 3161
#: timestamp), as sigstore-python's test suite ships it
KEYLESS_BUNDLE = (
    '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"'
    'certificate":{"rawBytes":"MIICyzCCAlCgAwIBAgIUJc/6ox+xb+Cmb5UVrFhdu5jiMzIwCgYIKoZIzj0E'
    'AwMwNzEVMBMGA1UEChMMc2lnc3RvcmUuZGV2MR4wHAYDVQQDExVzaWdzdG9yZS1pbnRlcm1lZGlhdGUwHhcNMj'
    'UwNjA5MTE1NzM1WhcNMjUwNjA5MTIwNzM1WjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvoYb1h6sjlOR'
    '276rCjnPc/PgZtTahLzmf32f08PZ/2eWr4q979itVw1PG8IhcK3E2ZiihegXEgh4mPkkMn78BKOCAW8wggFrMA'
    '4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAzAdBgNVHQ4EFgQUsoZlvpIKgR6WlgezvkD6xzHy'
    'pcMwHwYDVR0jBBgwFoAUcYYwphR8Ym/599b0BRp/X//rb6wwGQYDVR0RAQH/BA8wDYELamt1QGdvdG8uZmkwLA'
    'YKKwYBBAGDvzABAQQeaHR0cHM6Ly9naXRodWIuY29tL2xvZ2luL29hdXRoMC4GCisGAQQBg78wAQgEIAweaHR0'
    'cHM6Ly9naXRodWIuY29tL2xvZ2luL29hdXRoMIGKBgorBgEEAdZ5AgQCBHwEegB4AHYAKzC83GiIyeLh2CYpXn'
    'QfSDkxlgLynDPLXkNA/rKshnoAAAGXVI2aFgAABAMARzBFAiBDHRpKGTpiU3Nx28XgewlvzbMt/ug6ipN8Xj9t'
    'ryWbwQIhAP/3Cngo4St1nAggkflowySL0fPYg/QDcJKE6XceON3WMAoGCCqGSM49BAMDA2kAMGYCMQCfyQmcNb'
    'g2g5PD9Jrb9yOS+vEwwThoY2YDoptDzhJvOxNYLek6DRwCAjZ4SqeTwmQCMQDD3lXotLGsn/CJxGlEiVaF2+z3'
    'SKb+bLGGKQATHPkZ/XHvLI2cAdVhcTYeEn36shE="},"tlogEntries":[{"logIndex":"645","logId":{"'
    'keyId":"8w1amZ2S5mJIQkQmPxdMuOrL/oJkvFg9MnQXmeOCXck="},"kindVersion":{"kind":"hashedre'
    'kord","version":"0.0.2"},"inclusionProof":{"logIndex":"645","rootHash":"kNum4JmdViJPfZ'
    'LMRB3xPi6flATj2JzJSiF+1pQDzNQ=","treeSize":"646","hashes":["eTqr8nE8VGEREKQ2MDQeD+zKHT'
    'JERE6iNw0tG1G+WbQ=","wzbEsO0X3AWHadlgJZx7yhJdRVEZ2dEY21okXQ6UIi4=","QMesRTEZdIgthOEinY'
    'E/9J7wGv+VmArDZTICj9POmhY=","UNUMG62rMwoqCqFKknh4R5Ubkf5Z6dj+Pk0m/1xu8uo="],"checkpoin'
    't":{"envelope":"log2025-alpha1.rekor.sigstage.dev\\n646\\nkNum4JmdViJPfZLMRB3xPi6flATj2J'
    'zJSiF+1pQDzNQ=\\n\\n\\u2014 log2025-alpha1.rekor.sigstage.dev 8w1amQA0XB55lIjvC/rvbpawQn9'
    'lp2R5TSkvqoNJuxcH9Ii05Ddi66xN8z5ZE6GsK2MkvgNZuqnZ5RtHbq2kpt/B8AE=\\n"}},"canonicalizedB'
    'ody":"eyJhcGlWZXJzaW9uIjoiMC4wLjIiLCJraW5kIjoiaGFzaGVkcmVrb3JkIiwic3BlYyI6eyJoYXNoZWRS'
    'ZWtvcmRWMDAyIjp7ImRhdGEiOnsiYWxnb3JpdGhtIjoiU0hBMl8yNTYiLCJkaWdlc3QiOiJGZlp5UmhGWklidD'
    'hIZURuNmVrblhJQVczQ1ZLREFDWWlKUkxmdE5rU3FvPSJ9LCJzaWduYXR1cmUiOnsiY29udGVudCI6Ik1FVUNJ'
    'QVo2VDhBVVpTQ0JaYUtKa3NMbFNpbE5xRUVPdDRaeUdNR2VwVXBLcDdWR0FpRUFzL1gwa01KVG5FT3V6L0RMV3'
    'hUTDR3QlZOa2lXSVVERjM2RUVENzAzOTZBPSIsInZlcmlmaWVyIjp7ImtleURldGFpbHMiOiJQS0lYX0VDRFNB'
    'X1AyNTZfU0hBXzI1NiIsIng1MDlDZXJ0aWZpY2F0ZSI6eyJyYXdCeXRlcyI6Ik1JSUN5ekNDQWxDZ0F3SUJBZ0'
    'lVSmMvNm94K3hiK0NtYjVVVnJGaGR1NWppTXpJd0NnWUlLb1pJemowRUF3TXdOekVWTUJNR0ExVUVDaE1NYzJs'
    'bmMzUnZjbVV1WkdWMk1SNHdIQVlEVlFRREV4VnphV2R6ZEc5eVpTMXBiblJsY20xbFpHbGhkR1V3SGhjTk1qVX'
    'dOakE1TVRFMU56TTFXaGNOTWpVd05qQTVNVEl3TnpNMVdqQUFNRmt3RXdZSEtvWkl6ajBDQVFZSUtvWkl6ajBE'
    'QVFjRFFnQUV2b1liMWg2c2psT1IyNzZyQ2puUGMvUGdadFRhaEx6bWYzMmYwOFBaLzJlV3I0cTk3OWl0VncxUE'
    'c4SWhjSzNFMlppaWhlZ1hFZ2g0bVBra01uNzhCS09DQVc4d2dnRnJNQTRHQTFVZER3RUIvd1FFQXdJSGdEQVRC'
    'Z05WSFNVRUREQUtCZ2dyQmdFRkJRY0RBekFkQmdOVkhRNEVGZ1FVc29abHZwSUtnUjZXbGdlenZrRDZ4ekh5cG'
    'NNd0h3WURWUjBqQkJnd0ZvQVVjWVl3cGhSOFltLzU5OWIwQlJwL1gvL3JiNnd3R1FZRFZSMFJBUUgvQkE4d0RZ'
    'RUxhbXQxUUdkdmRHOHVabWt3TEFZS0t3WUJCQUdEdnpBQkFRUWVhSFIwY0hNNkx5OW5hWFJvZFdJdVkyOXRMMn'
    'h2WjJsdUwyOWhkWFJvTUM0R0Npc0dBUVFCZzc4d0FRZ0VJQXdlYUhSMGNITTZMeTluYVhSb2RXSXVZMjl0TDJ4'
    'dloybHVMMjloZFhSb01JR0tCZ29yQmdFRUFkWjVBZ1FDQkh3RWVnQjRBSFlBS3pDODNHaUl5ZUxoMkNZcFhuUW'
    'ZTRGt4bGdMeW5EUExYa05BL3JLc2hub0FBQUdYVkkyYUZnQUFCQU1BUnpCRkFpQkRIUnBLR1RwaVUzTngyOFhn'
    'ZXdsdnpiTXQvdWc2aXBOOFhqOXRyeVdid1FJaEFQLzNDbmdvNFN0MW5BZ2drZmxvd3lTTDBmUFlnL1FEY0pLRT'
    'ZYY2VPTjNXTUFvR0NDcUdTTTQ5QkFNREEya0FNR1lDTVFDZnlRbWNOYmcyZzVQRDlKcmI5eU9TK3ZFd3dUaG9Z'
    'MllEb3B0RHpoSnZPeE5ZTGVrNkRSd0NBalo0U3FlVHdtUUNNUUREM2xYb3RMR3NuL0NKeEdsRWlWYUYyK3ozU0'
    'tiK2JMR0dLUUFUSFBrWi9YSHZMSTJjQWRWaGNUWWVFbjM2c2hFPSJ9fX19fX0="}],"timestampVerificati'
    'onData":{"rfc3161Timestamps":[{"signedTimestamp":"MIIE6zADAgEAMIIE4gYJKoZIhvcNAQcCoIIE'
    '0zCCBM8CAQMxDTALBglghkgBZQMEAgEwgcMGCyqGSIb3DQEJEAEEoIGzBIGwMIGtAgEBBgkrBgEEAYO/MAIwMT'
    'ANBglghkgBZQMEAgEFAAQgOjYPmS6Qixa9OQqdXWQMPN66194GUnV3liEVd7cbW8oCFQDuYcF6Hx3Wi2sgxpmG'
    '+IG2KlvUKRgPMjAyNTA2MDkxMTU3MzhaMAMCAQECCQCbf5cNt4JRDqAypDAwLjEVMBMGA1UEChMMc2lnc3Rvcm'
    'UuZGV2MRUwEwYDVQQDEwxzaWdzdG9yZS10c2GgggITMIICDzCCAZagAwIBAgIUCjWhBmHV4kFzxomWp/J98n4D'
    'fKcwCgYIKoZIzj0EAwMwOTEVMBMGA1UEChMMc2lnc3RvcmUuZGV2MSAwHgYDVQQDExdzaWdzdG9yZS10c2Etc2'
    'VsZnNpZ25lZDAeFw0yNTAzMjgwOTE0MDZaFw0zNTAzMjYwODE0MDZaMC4xFTATBgNVBAoTDHNpZ3N0b3JlLmRl'
    'djEVMBMGA1UEAxMMc2lnc3RvcmUtdHNhMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEx1v5F3HpD9egHuknpBFlRz'
    '7QBRDJu4aeVzt9zJLRY0lvmx1lF7WBM2c9AN8ZGPQsmDqHlJN2R/7+RxLkvlLzkc19IOx38t7mGGEcB7agUDdC'
    'F/Ky3RTLSK0Xo/0AgHQdo2owaDAOBgNVHQ8BAf8EBAMCB4AwHQYDVR0OBBYEFKj8ZPYo3i7mO3NPVIxSxOGc3V'
    'OlMB8GA1UdIwQYMBaAFDsgRlletTJNRzDObmPuc3RH8gR9MBYGA1UdJQEB/wQMMAoGCCsGAQUFBwMIMAoGCCqG'
    'SM49BAMDA2cAMGQCMESvVS6GGtF33+J19TfwENWJXjRv4i0/HQFwLUSkX6TfV7g0nG8VnqNHJLvEpAtOjQIwUD'
    '3uywTXorQP1DgbV09rF9Yen+CEqs/iEpieJWPst280SSOZ5Na+dyPVk9/8SFk6MYIB3DCCAdgCAQEwUTA5MRUw'
    'EwYDVQQKEwxzaWdzdG9yZS5kZXYxIDAeBgNVBAMTF3NpZ3N0b3JlLXRzYS1zZWxmc2lnbmVkAhQKNaEGYdXiQX'
    'PGiZan8n3yfgN8pzALBglghkgBZQMEAgGggfwwGgYJKoZIhvcNAQkDMQ0GCyqGSIb3DQEJEAEEMBwGCSqGSIb3'
    'DQEJBTEPFw0yNTA2MDkxMTU3MzhaMC8GCSqGSIb3DQEJBDEiBCA6qJ7IlNaN4uuHegN2O+NsWY5kB6sw8E/Q3H'
    '3arU8jmDCBjgYLKoZIhvcNAQkQAi8xfzB9MHsweQQgBvT/4Ef+s1mZtzOw16MjUBz8GOTAM2aoRdd1NudLJ0Qw'
    'VTA9pDswOTEVMBMGA1UEChMMc2lnc3RvcmUuZGV2MSAwHgYDVQQDExdzaWdzdG9yZS10c2Etc2VsZnNpZ25lZA'
    'IUCjWhBmHV4kFzxomWp/J98n4DfKcwCgYIKoZIzj0EAwIEaDBmAjEA9vHFXY/Ia5L2g8F7ipZpiJOgDoAau7L+'
    'UkE5c1cCM2FYDZN1QQzWjXGj1CwQMOcuAjEAtBIxQiiecOzOkFo1Bj0n9xkIjyErSBT+P3P6OWgwdivDosxQCT'
    'MF7iNeI7wgFQxw"}]}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","diges'
    't":"FfZyRhFZIbt8HeDn6eknXIAW3CVKDACYiJRLftNkSqo="},"signature":"MEUCIAZ6T8AUZSCBZaKJks'
    'LlSilNqEEOt4ZyGMGepUpKp7VGAiEAs/X0kMJTnEOuz/DLWxTL4wBVNkiWIUDF36EED70396A="}}')


# -- keyless statements: build provenance and run records ----------------------------------

#: sigstore-python's test/assets/a.dsse.staging-rekor-v2.txt.sigstore.json (commit 27db13d,
#: Apache-2.0): an in-toto statement over its a.txt in a DSSE bundle, signed keylessly on
#: Sigstore's staging instance by a sigstore-conformance GitHub workflow. With the staging
#: trust root sigstore-python ships (REPROLOCK_SIGSTORE_OFFLINE=1), sigstore's Verifier
#: accepts it in full for that identity, so reprolock's own checks after it run for real.
DSSE_BUNDLE = Path(__file__).parent / "support" / "sigstore" / \
    "a.dsse.staging-rekor-v2.txt.sigstore.json"
BEACON = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
          ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")


@pytest.fixture
def staging(env: dict[str, str]) -> dict[str, str]:
    return {**env, "REPROLOCK_SIGSTORE_INSTANCE": "staging", "REPROLOCK_SIGSTORE_OFFLINE": "1"}


def _check(project: Path, tmp_path: Path, env: dict[str, str], name: str, *args: str | Path,
           identity: str = BEACON) -> dict[str, object]:
    proc = _verify(project, tmp_path, env, "--json", *args, "--certificate-identity",
                   identity, "--certificate-oidc-issuer", ISSUER)
    assert proc.returncode == 1, proc.stderr  # the lock is not signed keylessly: never 0
    return next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == name)


def _provenance_bundle(project: Path) -> Path:
    (project / ".reprolock").mkdir(exist_ok=True)
    (project / ".reprolock" / "build.sigstore.json").write_bytes(DSSE_BUNDLE.read_bytes())
    return project / ".reprolock" / "build.dsse.json"


def test_keyless_provenance_is_verified_then_matched_to_this_lock(
        project: Path, tmp_path: Path, staging: dict[str, str]) -> None:
    """sigstore's Verifier accepts the bundle for its signer; its statement is about a.txt,
    not this lock: reprolock's subject check refuses it (exit 1)."""
    check = _check(project, tmp_path, staging, "provenance", "--attestation",
                   _provenance_bundle(project))
    assert not check["ok"]
    assert "no subject 'reprolock.lock.json'" in str(check["detail"]), check


def test_keyless_provenance_of_another_identity_fails(project: Path, tmp_path: Path,
                                                      staging: dict[str, str]) -> None:
    check = _check(project, tmp_path, staging, "provenance", "--attestation",
                   _provenance_bundle(project), identity=IDENTITY)
    assert not check["ok"]
    assert f"does not verify as signed by {IDENTITY}" in str(check["detail"]), check


def test_keyless_provenance_changed_after_signing_fails(project: Path, tmp_path: Path,
                                                        staging: dict[str, str]) -> None:
    attestation = _provenance_bundle(project)
    bundle_file = project / ".reprolock" / "build.sigstore.json"
    bundle = json.loads(bundle_file.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["subject"][0]["name"] = "reprolock.lock.json"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    bundle_file.write_text(json.dumps(bundle))
    check = _check(project, tmp_path, staging, "provenance", "--attestation", attestation)
    assert not check["ok"]
    assert "does not verify as signed by" in str(check["detail"]), check


def test_a_dsse_file_beside_that_holds_another_statement_fails(
        project: Path, tmp_path: Path, staging: dict[str, str]) -> None:
    attestation = _provenance_bundle(project)
    bundle = json.loads(DSSE_BUNDLE.read_text())
    other = {**bundle["dsseEnvelope"], "payload": base64.b64encode(b"{}").decode()}
    attestation.write_text(json.dumps(other))
    check = _check(project, tmp_path, staging, "provenance", "--attestation", attestation)
    assert not check["ok"]
    assert "holds another statement than the one build.sigstore.json signs" in str(
        check["detail"]), check


def test_keyless_run_record_is_verified_then_matched_to_the_record(
        project: Path, tmp_path: Path, staging: dict[str, str]) -> None:
    """The record's keyless bundle verifies for its signer, but signs a SLSA statement,
    not this record's run statement."""
    from tests.test_verify import _record

    record = tmp_path / "run.json"
    record.write_text(json.dumps(_record(project)))
    (tmp_path / "run.sigstore.json").write_bytes(DSSE_BUNDLE.read_bytes())
    check = _check(project, tmp_path, staging, "signature", "--run", record)
    assert not check["ok"]
    assert "is not a reprolock run statement" in str(check["detail"]), check
    check = _check(project, tmp_path, staging, "signature", "--run", record,
                   identity=IDENTITY)
    assert "does not verify as signed by" in str(check["detail"]), check


def test_verify_identity_is_not_mixed_with_image(project: Path, tmp_path: Path,
                                                 env: dict[str, str]) -> None:
    proc = _verify(project, tmp_path, env, "--certificate-identity", IDENTITY,
                   "--certificate-oidc-issuer", ISSUER, "--image", "oci:x")
    assert proc.returncode == 2, proc.stderr
    _paragraph(proc.stderr)
    assert "not with --image" in proc.stderr
