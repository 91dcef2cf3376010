"""``reprolock lock --check``: offline, writes nothing, imports little (a pre-commit hook)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reprolock.config import Config
from reprolock.lock.inputs import collect_inputs, config_hash, describe_changes, inputs_digest
from reprolock.lock.io import read_lock
from reprolock.lock.model import Lock

LEGACY = ("the lock was written by an earlier reprolock, which counted the [code] table "
          "as a lock input (it is not one: the lock does not describe the code); the config "
          "is otherwise unchanged")


@dataclass(frozen=True)
class CheckOutcome:
    fresh: bool
    path: Path
    changes: tuple[str, ...]


def check_lock(config: Config, *, cache_dir: Path | None, lock: Lock | None = None,
               ) -> CheckOutcome:
    """Is the lock's inputsDigest the digest of the inputs as they are now? ``lock``: the
    lock the caller has already read, so that a command reads it once."""
    path = config.lock_path
    if lock is None:
        lock = read_lock(path, cache_dir=cache_dir)
    inputs = collect_inputs(config)
    if inputs_digest(inputs) == lock.inputs_digest:
        return CheckOutcome(True, path, ())
    changes = describe_changes(lock.inputs, inputs) or ["the inputs digest differs"]
    if lock.inputs.config.sha256 == config_hash(config, legacy=True):
        changes = [LEGACY if c == f"config {config.source_name} changed" else c
                   for c in changes]
    return CheckOutcome(False, path, tuple(changes))


def render_check(outcome: CheckOutcome, *, as_json: bool) -> tuple[str, str, int]:
    """(stdout, stderr, exit code) of a check, the same for every way it is run."""
    import json

    if as_json:
        doc = {"fresh": outcome.fresh, "lock": str(outcome.path), "changes": list(outcome.changes)}
        return json.dumps(doc, indent=2, sort_keys=True) + "\n", "", 0 if outcome.fresh else 1
    if outcome.fresh:
        return f"{outcome.path.name} is fresh\n", "", 0
    lines = [f"{outcome.path.name} is stale:"]
    lines += [f"  - {change}" for change in outcome.changes]
    lines.append("  fix: run 'reprolock lock' and commit the lock")
    return "", "\n".join(lines) + "\n", 1


_SBOM_LIMIT = 1 << 30  # an SBOM of the largest images is tens of MB


def locked_sbom(root: Path, lock: Lock) -> bytes:
    """The SBOM file the lock names, whose sha256 must be the one it records: the one
    check of it, for build (which attaches it) and verify."""
    from reprolock._internal.files import sha256_bytes
    from reprolock._internal.jsonio import read_bounded
    from reprolock.errors import VerificationError

    assert lock.sbom is not None
    fix = "run 'reprolock lock' to write it again"
    path = root / lock.sbom.path
    if not path.is_file():
        raise VerificationError(f"the SBOM {lock.sbom.path} named by the lock is missing",
                                hint=fix)
    data = read_bounded(path, limit=_SBOM_LIMIT, error=VerificationError, hint=fix)
    if (actual := sha256_bytes(data)) != lock.sbom.sha256:
        raise VerificationError(f"{lock.sbom.path} was changed after locking (sha256 {actual}, "
                                f"the lock records {lock.sbom.sha256})", hint=fix)
    return data
