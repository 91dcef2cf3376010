"""``reprolock verify --run RECORD``: a run record is well formed, signed (with
``--key``), its run passed the runtime check and its outputs still have their hashes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reprolock._internal.files import sha256_file
from reprolock.config import Config
from reprolock.errors import ReprolockError
from reprolock.schemas import validate
from reprolock.signing.interface import VerificationFailed
from reprolock.verify.report import Check, Report, attempt


class RunRecordError(ReprolockError):
    """A run record is missing, not JSON, or not a valid record (exit 2)."""


def read_record(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise RunRecordError(f"no run record at {path}",
                             hint="pass a file that 'reprolock run' wrote "
                             "(.reprolock/runs/*.json)") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunRecordError(f"{path} is not a readable JSON run record: {exc}",
                             hint="the record is corrupt; use the signed copy "
                             "(RECORD.dsse.json) or run again") from exc
    version = doc.get("recordVersion") if isinstance(doc, dict) else None
    if isinstance(version, int) and version > 1:
        raise RunRecordError(f"{path.name} has recordVersion {version}; this reprolock reads "
                             "recordVersion 1", hint="upgrade reprolock")
    validate(doc, "run-record", source=path.name, error=RunRecordError,
             hint="the record is corrupt or was edited; use the signed copy or run again")
    return dict(doc)


def verify_record(config: Config, path: Path, *, key: Path | None) -> Report:
    record = read_record(path)
    checks = [Check("record", True, f"{path.name} is a valid run record "
                    f"(image {record['image']['id'][:19]}…, exit {record['exitCode']})")]
    from reprolock.verify.lockchecks import _signature as _lock_signature
    from reprolock.verify.lockchecks import _trusted

    trusted = _trusted(config, key)  # require-signature without --key: exit 1, says so
    if trusted is not None:
        checks.append(attempt("signature", lambda: _signature(path, record, trusted)))
        checks.append(attempt("lock-signature", lambda: _lock_signature(config, trusted)))
    checks.append(_runtime(record))
    checks.append(_exit(record))
    checks.append(_outputs(config, record))
    return Report(tuple(checks))


def _signature(path: Path, record: Mapping[str, Any], trusted: list[Any]) -> str:
    from reprolock.run import RUN_PREDICATE, envelope_path
    from reprolock.signing.dsse import verify_envelope

    where = envelope_path(path)
    try:
        envelope = json.loads(where.read_bytes())
    except FileNotFoundError as exc:
        raise VerificationFailed(f"{path.name} is not signed (no {where.name})",
                                 hint="run with --sign-key to sign run records") from exc
    except (OSError, ValueError) as exc:
        raise VerificationFailed(f"{where.name} is not a DSSE envelope: {exc}") from exc
    verified = verify_envelope(envelope, trusted)
    statement = verified.statement()
    if statement.get("predicateType") != RUN_PREDICATE:
        raise VerificationFailed(f"{where.name} is not a reprolock run statement "
                                 f"(predicateType {statement.get('predicateType')!r})")
    if statement.get("predicate") != record:
        raise VerificationFailed(f"{path.name} differs from the record signed in {where.name}",
                                 hint="the record was edited after the run; trust the signed "
                                 "copy")
    return f"signed by {verified.key.path.name} (key id {verified.key.key_id[:16]}…)"


def _runtime(record: Mapping[str, Any]) -> Check:
    check = record["check"]
    if check["ok"]:
        return Check("runtime", True, f"the run's environment passed the {check['mode']} "
                     "runtime check")
    return Check("runtime", False, "the run went ahead despite drift (--warn-only)",
                 tuple(f"{name} differed" for name in check["failed"]),
                 fix="rebuild the image and run again")


def _exit(record: Mapping[str, Any]) -> Check:
    code = record["exitCode"]
    return Check("exit", code == 0, f"the command {' '.join(record['command'])!r} exited "
                 f"{code}", fix=None if code == 0 else "see the run's output")


def _outputs(config: Config, record: Mapping[str, Any]) -> Check:
    outputs = record["outputs"]
    base = config.root / outputs["dir"]
    differences = []
    for item in outputs["files"]:
        path = base / item["path"]
        if "sha256" not in item:
            differences.append(f"{outputs['dir']}/{item['path']} could not be read when the "
                               f"run ended ({item.get('unreadable', 'no sha256')}): the record "
                               "cannot vouch for it")
        elif not path.is_file():
            differences.append(f"{outputs['dir']}/{item['path']} is missing")
        elif sha256_file(path) != item["sha256"]:
            differences.append(f"{outputs['dir']}/{item['path']} changed since the run")
    if differences:
        return Check("outputs", False, f"{len(differences)} of {len(outputs['files'])} outputs "
                     "differ from the record", tuple(differences),
                     fix="restore the outputs the run wrote, or run again")
    return Check("outputs", True, f"{len(outputs['files'])} output files have the recorded "
                 "sha256")
