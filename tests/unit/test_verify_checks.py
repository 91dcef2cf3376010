"""The verify checks in process: a project locked by the Locker (no image, no SBOM), then
lock_checks and run_checks on it fresh, stale, signed, badly signed; and the Report,
Check and attempt that every verify mode reports with."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from reprolock._internal.cache import default_cache_dir
from reprolock.config import Config, load_config
from reprolock.errors import (
    EXIT_ERROR,
    EXIT_FINDING,
    EXIT_OK,
    ConfigError,
    LockFileError,
    VerificationError,
)
from reprolock.resolver import resolver_for
from reprolock.signing.keys import generate_keypair, load_signer
from reprolock.verify.lockchecks import RELOCK, lock_checks, run_checks
from reprolock.verify.report import Check, Report, attempt
from reprolock.workflows.lock import Locker, sign_lock

PASSPHRASE = b"correct horse"


def locked(make_project: Callable[..., Path], **kwargs: object) -> Config:
    """A project locked in process, without an image or SBOM (no Docker, no syft)."""
    root = make_project(**kwargs)
    config = load_config(root)
    outcome = Locker(config, resolver_for("uv")).lock(build=None, sbom_format=None)
    assert outcome.commit == (config.lockfile,)
    assert config.lock_path.is_file()
    return config


def keypair(directory: Path, name: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return generate_keypair(directory / name, passphrase=PASSPHRASE)


def by_name(report: Report) -> dict[str, Check]:
    return {c.name: c for c in report.checks}


# -- lock_checks -------------------------------------------------------------------------

def test_a_fresh_lock_passes(make_project: Callable[..., Path]) -> None:
    config = locked(make_project)
    lock, checks = lock_checks(config, default_cache_dir())
    assert {p.name for p in lock.packages} == {"tinyml", "tinyconfig"}
    assert [(c.name, c.ok) for c in checks] == [("lock", True), ("fresh", True)]
    assert checks[1].detail == "the lock matches its inputs" and checks[1].differences == ()


def test_a_changed_input_makes_the_lock_stale(make_project: Callable[..., Path]) -> None:
    config = locked(make_project)
    (config.root / "requirements.in").write_text("tinyml\ntoolz-lite\n")
    _, checks = lock_checks(config, default_cache_dir())
    fresh = checks[1]
    assert (fresh.name, fresh.ok, fresh.detail) == ("fresh", False, "the lock is stale")
    assert any("requirements.in" in d for d in fresh.differences), fresh.differences
    assert fresh.fix == RELOCK


def test_an_invalid_lock_raises_instead_of_failing_a_check(
        make_project: Callable[..., Path]) -> None:
    config = locked(make_project)
    data = json.loads(config.lock_path.read_text())
    del data["packages"]
    config.lock_path.write_text(json.dumps(data))
    with pytest.raises(LockFileError) as caught:
        lock_checks(config, default_cache_dir())
    assert caught.value.exit_code == EXIT_ERROR


# -- run_checks --------------------------------------------------------------------------

def test_run_checks_fresh_unsigned(make_project: Callable[..., Path]) -> None:
    report = run_checks(locked(make_project), key=None, attestation=None, rebuild=False)
    assert [c.name for c in report.checks] == ["lock", "fresh"]  # no signature, no SBOM
    assert report.ok and report.exit_code == EXIT_OK and report.fixes() == []


def test_run_checks_stale_is_a_finding(make_project: Callable[..., Path]) -> None:
    config = locked(make_project)
    (config.root / "requirements.in").write_text("tinyml==1.0.0\n")
    report = run_checks(config, key=None, attestation=None, rebuild=False)
    assert not report.ok and report.exit_code == EXIT_FINDING
    assert report.fixes() == [RELOCK]
    assert "✗ fresh: the lock is stale" in report.render()
    assert report.to_json()["fix"] == [RELOCK]


def test_a_rebuild_of_a_lock_without_an_image_fails_its_check(
        make_project: Callable[..., Path]) -> None:
    report = run_checks(locked(make_project), key=None, attestation=None, rebuild=True)
    rebuild = by_name(report)["rebuild"]
    assert not rebuild.ok and "--no-build" in rebuild.detail
    assert report.exit_code == EXIT_FINDING


def test_a_good_signature_passes(make_project: Callable[..., Path], tmp_path: Path) -> None:
    config = locked(make_project)
    private, public = keypair(tmp_path / "keys", "mine")
    sign_lock(config, load_signer(private, passphrase=PASSPHRASE))
    report = run_checks(config, key=public, attestation=None, rebuild=False)
    signature = by_name(report)["signature"]
    assert signature.ok and "mine.pub" in signature.detail
    assert report.exit_code == EXIT_OK


def test_a_signature_by_another_key_fails(make_project: Callable[..., Path],
                                          tmp_path: Path) -> None:
    config = locked(make_project)
    theirs, _ = keypair(tmp_path / "keys", "theirs")
    _, mine = keypair(tmp_path / "keys", "mine")
    sign_lock(config, load_signer(theirs, passphrase=PASSPHRASE))
    report = run_checks(config, key=mine, attestation=None, rebuild=False)
    signature = by_name(report)["signature"]
    assert not signature.ok and "not a valid signature" in signature.detail
    assert by_name(report)["fresh"].ok  # the other checks still ran
    assert report.exit_code == EXIT_FINDING


def test_a_lock_changed_after_signing_fails(make_project: Callable[..., Path],
                                           tmp_path: Path) -> None:
    config = locked(make_project)
    private, public = keypair(tmp_path / "keys", "mine")
    sign_lock(config, load_signer(private, passphrase=PASSPHRASE))
    config.lock_path.write_text(config.lock_path.read_text() + "\n")
    report = run_checks(config, key=public, attestation=None, rebuild=False)
    assert [(c.name, c.ok) for c in report.checks] == [
        ("lock", True), ("fresh", True), ("signature", False)]


def test_an_unsigned_lock_fails_the_signature_check(make_project: Callable[..., Path],
                                                    tmp_path: Path) -> None:
    config = locked(make_project)
    _, public = keypair(tmp_path / "keys", "mine")
    signature = by_name(run_checks(config, key=public, attestation=None))["signature"]
    assert not signature.ok and "is not signed" in signature.detail
    assert signature.fix is not None and "reprolock sign" in signature.fix


def test_require_signature_without_a_key_is_an_error(make_project: Callable[..., Path]) -> None:
    config = locked(make_project, extra="require-signature = true")
    assert config.require_signature
    with pytest.raises(VerificationError, match="require-signature") as caught:
        run_checks(config, key=None, attestation=None)
    assert caught.value.hint and "--key" in caught.value.hint


def test_an_attestation_needs_a_key(make_project: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="--attestation needs --key"):
        run_checks(locked(make_project), key=None, attestation=tmp_path / "a.dsse.json")


# -- Check, Report, attempt --------------------------------------------------------------

def test_attempt_turns_a_verification_error_into_a_failed_check() -> None:
    def fails() -> str:
        raise VerificationError("the digest differs", hint="rebuild it")

    def fails_without_hint() -> str:
        raise VerificationError("no hint")

    assert attempt("ok", lambda: "all good") == Check("ok", True, "all good")
    failed = attempt("digest", fails, fix="fallback")
    assert failed == Check("digest", False, "the digest differs", fix="rebuild it")
    assert attempt("digest", fails_without_hint, fix="fallback").fix == "fallback"


def test_attempt_lets_other_errors_through() -> None:
    def broken() -> str:
        raise ConfigError("cannot run")

    with pytest.raises(ConfigError):
        attempt("x", broken)


def test_report_render_json_and_exit_codes() -> None:
    checks = (Check("a", True, "fine"), Check("b", True, "unsigned", unproven=True),
              Check("c", False, "broken", ("x 1 → 2",), fix="do this"),
              Check("d", False, "broken too", fix="do this"))
    report = Report(checks)
    assert not report.ok and report.exit_code == EXIT_FINDING
    assert report.fixes() == ["do this"]  # once
    assert report.render() == ("✓ a: fine\n! b: unsigned\n✗ c: broken\n    x 1 → 2\n"
                               "✗ d: broken too\nfix:\n  do this\n")
    doc = report.to_json()
    assert doc["ok"] is False and doc["fix"] == ["do this"]
    assert doc["checks"][2] == {"name": "c", "ok": False, "detail": "broken",  # type: ignore[index]
                                "differences": ["x 1 → 2"], "fix": "do this", "unproven": False}
    passing = Report(checks[:2])
    assert passing.ok and passing.exit_code == EXIT_OK and "fix:" not in passing.render()
