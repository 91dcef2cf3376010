"""Checks of a lock and what hangs on it, each reported as passed or failed.

A failed check is a finding (exit 1); a check that cannot run raises, so the command
never exits 0 when something could not be checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprolock._internal.cache import default_cache_dir
from reprolock._internal.files import sha256_file
from reprolock.config import Config
from reprolock.errors import EXIT_FINDING, EXIT_OK
from reprolock.lock.check import check_lock
from reprolock.lock.io import read_lock
from reprolock.lock.model import Lock
from reprolock.signing.interface import VerificationFailed

if TYPE_CHECKING:
    from reprolock.signing.keys import TrustedKey


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_OK if all(c.ok for c in self.checks) else EXIT_FINDING

    def to_json(self) -> dict[str, object]:
        return {"ok": self.exit_code == EXIT_OK,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}


def _run(name: str, check: Callable[[], str]) -> Check:
    try:
        return Check(name, True, check())
    except VerificationFailed as exc:
        return Check(name, False, exc.diagnostics())


def run_checks(config: Config, *, key: Path | None, attestation: Path | None) -> Report:
    cache = default_cache_dir()
    lock = read_lock(config.lock_path, cache_dir=cache)  # unreadable or invalid: an error
    checks = [Check("lock", True, f"{config.lockfile} is valid (lockVersion 1)")]
    freshness = check_lock(config, cache_dir=cache)
    checks.append(Check("fresh", freshness.fresh,
                        "the lock matches its inputs" if freshness.fresh else
                        "; ".join(freshness.changes) + " (fix: run 'reprolock lock')"))
    trusted = None
    if key is not None:
        from reprolock.signing.keys import load_trusted

        trusted = load_trusted(key)
        checks.append(_run("signature", lambda: _signature(config, trusted or [])))
    if lock.sbom is not None:
        checks.append(_run("sbom", lambda: _sbom(config, lock)))
    if attestation is not None:
        if trusted is None:
            raise VerificationFailed("--attestation needs --key to check its signature",
                                     hint="pass --key PUBLIC_KEY")
        checks.append(_run("provenance",
                           lambda: _provenance(config, lock, attestation, trusted or [])))
    return Report(tuple(checks))


def _signature(config: Config, trusted: list[TrustedKey]) -> str:
    from reprolock.signing.blob import verify_file

    key = verify_file(config.lock_path, trusted)
    return f"signed by {key.path.name} (key id {key.key_id[:16]}…)"


def _sbom(config: Config, lock: Lock) -> str:
    assert lock.sbom is not None
    path = config.root / lock.sbom.path
    if not path.is_file():
        raise VerificationFailed(f"{lock.sbom.path} is missing",
                                 hint="run 'reprolock lock' to write it again")
    actual = sha256_file(path)
    if actual != lock.sbom.sha256:
        raise VerificationFailed(f"{lock.sbom.path} was changed after locking (sha256 {actual}, "
                                 f"the lock records {lock.sbom.sha256})",
                                 hint="run 'reprolock lock' to write it again")
    return f"{lock.sbom.path} is the one the lock records"


def _provenance(config: Config, lock: Lock, path: Path, trusted: list[TrustedKey]) -> str:
    from reprolock.signing.dsse import check_subjects, verify_envelope

    try:
        envelope = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise VerificationFailed(f"cannot read the attestation {path}: {exc}") from exc
    if not isinstance(envelope, dict):
        raise VerificationFailed(f"{path} is not a DSSE envelope (not a JSON object)")
    verified = verify_envelope(envelope, trusted)
    statement = verified.statement()
    check_subjects(statement, {config.lockfile: "sha256:" + sha256_file(config.lock_path)})
    params = statement.get("predicate", {}).get("buildDefinition", {}).get(
        "externalParameters", {})
    if params.get("inputsDigest") != lock.inputs_digest:
        raise VerificationFailed("the attestation was made for other inputs "
                                 f"({params.get('inputsDigest')}, not {lock.inputs_digest})")
    image: dict[str, Any] = next(
        (s for s in statement.get("subject", []) if s.get("name") == "image"), {})
    return (f"signed by {verified.key.path.name}; image sha256:"
            f"{image.get('digest', {}).get('sha256', '?')} built from this lock")
