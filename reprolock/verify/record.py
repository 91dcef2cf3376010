"""``reprolock verify --run RECORD``: a run record is well formed, signed (with
``--key``), its run passed the runtime check and its outputs still have their hashes."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprolock._internal.files import sha256_bytes, sha256_file
from reprolock._internal.jsonio import parse_json, read_json
from reprolock.config import Config
from reprolock.errors import RunRecordError, UsageError, VerificationError
from reprolock.schemas import validate
from reprolock.verify.report import Check, Report, attempt

if TYPE_CHECKING:
    from reprolock.verify.keyless import KeylessIdentity

RECORD_HINT = ("the record is corrupt or was edited; use the signed copy (RECORD.dsse.json) "
               "or run again")
# The signed record's contract, shared by the run that writes it and the check that reads
# it; here, below both, so that verifying a record does not import the run workflow.
RUN_PREDICATE = "https://reprolock.dev/run/v1"
#: how a cluster job's record names outputs on a Kubernetes PersistentVolumeClaim
CLAIM_PREFIX = "pvc:"


#: a data directory of more files is refused: its listing would outgrow the record
DATA_FILE_LIMIT = 100_000


def data_tree(directory: Path, *, limit: int = DATA_FILE_LIMIT) -> list[dict[str, Any]]:
    """Every file under ``directory`` with its size and sha256, and every symbolic link
    with its target (not followed: its target is listed in its own right), sorted by
    path. A link that leads out of the directory, or an absolute one (it would point
    elsewhere inside the container), is refused; so is a tree of more than ``limit``."""
    root = directory.resolve()
    found: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        for name in sorted([*filenames, *(d for d in dirnames
                                          if Path(dirpath, d).is_symlink())]):
            if len(found) >= limit:
                raise UsageError(f"the data directory {directory} holds more than {limit} "
                                 "files, the most a run record lists",
                                 hint="pack the data into fewer files (shards, an archive)")
            found.append(_data_entry(root, Path(dirpath, name), directory))
    return sorted(found, key=lambda e: str(e["path"]))


def _raise(exc: OSError) -> None:
    raise UsageError(f"cannot list the data directory {exc.filename}: {exc.strerror}",
                     hint="make it readable, or leave it out of --data")


def _data_entry(root: Path, path: Path, shown: Path) -> dict[str, Any]:
    rel = path.relative_to(root).as_posix()
    if path.is_symlink():
        target = os.readlink(path)
        inside = (path.parent / target).resolve().is_relative_to(root)
        if os.path.isabs(target) or not inside:
            raise UsageError(f"{shown}/{rel} is a symbolic link to {target}, outside the data "
                             "directory: the run cannot see it there, and the record could "
                             "not vouch for it", hint="copy the file into the directory, or "
                             "make the link relative and inside it")
        return {"path": rel, "symlink": target}
    try:
        return {"path": rel, "size": path.stat().st_size, "sha256": sha256_file(path)}
    except OSError as exc:
        raise UsageError(f"cannot read {shown}/{rel}: {exc.strerror or exc}",
                         hint="make it readable, or leave it out of --data") from None


def tree_digest(files: list[dict[str, Any]]) -> str:
    """One digest of a listing: sha256 of its canonical JSON (sorted, no spaces)."""
    text = json.dumps(files, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + sha256_bytes(text.encode())


def envelope_path(record: Path) -> Path:
    """Where the signed copy of ``record`` is: RECORD.dsse.json beside RECORD.json."""
    return record.with_name(record.name.removesuffix(".json") + ".dsse.json")


def read_record(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise RunRecordError(f"no run record at {path}",
                             hint="pass a file that 'reprolock run' wrote "
                             "(.reprolock/runs/*.json)")
    # strictly: with duplicate keys, json.loads keeps the last, so a record could say
    # "exitCode": 3 to one reader and 0 to another
    doc = read_json(path, error=RunRecordError, hint=RECORD_HINT)
    version = doc.get("recordVersion")
    if isinstance(version, int) and version > 1:
        raise RunRecordError(f"{path.name} has recordVersion {version}; this reprolock reads "
                             "recordVersion 1", hint="upgrade reprolock")
    validate(doc, "run-record", source=path.name, error=RunRecordError, hint=RECORD_HINT)
    return dict(doc)


def verify_record(config: Config, path: Path, *, key: Path | None,
                  allow_code_drift: bool = False, outputs: Path | None = None,
                  identity: KeylessIdentity | None = None) -> Report:
    """The record, its signature (by a trusted key, or keylessly by ``identity``), and
    that it is a run of this project's lock and code: a genuine record of another project
    must not vouch for this one."""
    record = read_record(path)
    checks = [Check("record", True, f"{path.name} is a valid run record "
                    f"(image {record['image']['id'][:19]}…, exit {record['exitCode']})")]
    checks += _signature_checks(config, path, record, key, identity)
    checks.append(_lock(config, record))
    checks.append(_code(config, record, allow_code_drift))
    checks.append(_runtime(record))
    checks.append(_exit(record))
    checks.append(_outputs(config, record, outputs))
    checks += [_data(config, item) for item in record.get("data", [])]
    return Report(tuple(checks))


def _signature_checks(config: Config, path: Path, record: Mapping[str, Any],
                      key: Path | None, identity: KeylessIdentity | None) -> list[Check]:
    from reprolock.verify.lockchecks import _signature as _lock_signature
    from reprolock.verify.lockchecks import _trusted

    if identity is not None:
        from reprolock.verify.keyless import keyless_signature

        return [attempt("signature", lambda: _keyless(path, record, identity)),
                attempt("lock-signature",
                        lambda: keyless_signature(config.lock_path, identity))]
    trusted = _trusted(config, key)  # require-signature without --key: exit 1, says so
    if trusted is not None:
        return [attempt("signature", lambda: _signature(path, record, trusted)),
                attempt("lock-signature", lambda: _lock_signature(config, trusted))]
    # a record is a file anyone can write: unsigned, what follows checks its claims
    # against this project, not that a run made them
    return [Check("signature", True, "not checked (no --key): the record's claims are only "
                  "its writer's word; pass --key PUB to prove which key signed them",
                  unproven=True)]


def _keyless(path: Path, record: Mapping[str, Any], identity: KeylessIdentity) -> str:
    """RECORD.sigstore.json is a keyless signature of this record by ``identity``."""
    from reprolock.signing.bundle import envelope_bundle_path
    from reprolock.verify.keyless import keyless_statement

    where = envelope_path(path)
    payload, verified = keyless_statement(where, identity)
    _signs_record(path, record, envelope_bundle_path(where).name, payload)
    return verified


def _lock(config: Config, record: Mapping[str, Any]) -> Check:
    """The run used the lock checked here: its signature and freshness say nothing about a
    run of another lock."""
    recorded = record["lock"]["digest"]
    try:
        current = "sha256:" + sha256_file(config.lock_path)
    except OSError as exc:
        return Check("run-lock", False, f"cannot read {config.lockfile} to compare with the "
                     f"lock the run used ({exc.strerror or exc})",
                     fix="verify the record in the checkout of the project that ran")
    if current == recorded:
        return Check("run-lock", True, f"the run used this {config.lockfile} ({current[:19]}…)")
    return Check("run-lock", False, f"the run used another lock than this {config.lockfile}",
                 (f"lock digest {recorded} (the run) → {current} (here)",),
                 fix="verify the record in the checkout (and lock) of the run; the record "
                 f"names the lock {record['lock']['path']}")


def _code(config: Config, record: Mapping[str, Any], allow: bool) -> Check:
    """The run's code is this checkout's; like 'verify --image', --allow-code-drift accepts
    another tree and says so."""
    from reprolock.inspection.codeset import collect_code

    recorded = record["codeTree"]
    tree = collect_code(config).tree_digest
    if tree == recorded:
        return Check("run-code", True, f"the run used this code tree ({tree[:19]}…)")
    commit = record.get("gitCommit")
    if allow:
        return Check("run-code", True, f"the run used another code tree ({recorded[:19]}…, now "
                     f"{tree[:19]}…), allowed by --allow-code-drift")
    return Check("run-code", False, "the run used another code tree than this checkout",
                 (f"code tree {recorded} (the run) → {tree} (here)",),
                 fix=(f"check out the commit the run used ({commit}) " if commit else
                      "restore the code the run used ") + "or pass --allow-code-drift")


def _signature(path: Path, record: Mapping[str, Any], trusted: list[Any]) -> str:
    """RECORD.sigstore.json and RECORD.dsse.json, each one present, sign this record."""
    from reprolock.signing.bundle import envelope_bundle_path, present, verify_envelope_files

    where = envelope_path(path)
    if not present(where) and not present(envelope_bundle_path(where)):
        raise VerificationError(f"{path.name} is not signed (no {where.name} or "
                                f"{envelope_bundle_path(where).name})",
                                hint="run with --sign-key to sign run records")
    # a malformed envelope is a broken input (exit 2), not a signature that failed
    checked = verify_envelope_files(
        where, trusted,
        read=lambda p: read_json(p, error=RunRecordError, hint="the envelope is corrupt; use "
                                 "the one 'reprolock run --sign-key' wrote, or run again"),
        check=lambda name, verified: _signs_record(path, record, name, verified.payload))
    key = checked.envelope.key
    return (f"signed by {key.path.name} (key id {key.key_id[:16]}…; "
            f"{checked.describe()})")


def _signs_record(path: Path, record: Mapping[str, Any], signed_in: str, payload: bytes,
                  ) -> None:
    """The signed payload is a run statement of exactly this record."""
    from reprolock.signing.dsse import STATEMENT_V1

    # the signed payload strictly too: a duplicate "predicate" would let the signature
    # cover one record while the comparison below reads another
    statement = parse_json(payload, source=f"the payload of {signed_in}",
                           error=RunRecordError, hint="the envelope is corrupt; run again")
    if statement.get("_type") != STATEMENT_V1:
        raise VerificationError(f"the payload of {signed_in} is not an in-toto Statement v1 "
                                f"(_type {statement.get('_type')!r})")
    if statement.get("predicateType") != RUN_PREDICATE:
        raise VerificationError(f"{signed_in} is not a reprolock run statement "
                                f"(predicateType {statement.get('predicateType')!r})")
    if statement.get("predicate") != record:
        raise VerificationError(f"{path.name} differs from the record signed in {signed_in}",
                                hint="the record was edited after the run; trust the signed "
                                "copy")


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


def _outputs(config: Config, record: Mapping[str, Any], where: Path | None) -> Check:
    outputs = record["outputs"]
    if where is None and outputs["dir"].startswith(CLAIM_PREFIX):
        # a Kubernetes job wrote them to a volume this machine does not mount
        return Check("outputs", False, f"the run wrote its outputs to the volume "
                     f"{outputs['dir']}, which is not here", fix="copy its files off the "
                     "volume and pass --outputs DIR")
    base = where if where is not None else config.root / outputs["dir"]
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


def _data(config: Config, item: Mapping[str, Any]) -> Check:
    """The data the run read still hashes as recorded, when its directory is here."""
    shown = item["dir"]
    where = Path(shown) if Path(shown).is_absolute() else config.root / shown
    name = f"data {item['mount']}"
    if not where.is_dir():
        return Check(name, True, f"not checked: the data directory {shown} is not here "
                     "(the record names its tree digest "
                     f"{item['treeDigest'][:19]}…)", unproven=True)
    try:
        now = {e["path"]: e for e in data_tree(where)}
    except UsageError as exc:
        return Check(name, False, f"{shown} cannot be compared: {exc.message}", fix=exc.hint)
    then = {e["path"]: e for e in item["files"]}
    differences = [f"{shown}/{p} is missing" for p in then if p not in now]
    differences += [f"{shown}/{p} is new" for p in now if p not in then]
    differences += [f"{shown}/{p} changed since the run" for p in then
                    if p in now and now[p] != then[p]]
    if differences:
        return Check(name, False, f"{len(differences)} difference(s) from the data the run "
                     "read", tuple(sorted(differences)[:50]), fix="restore the data the run "
                     "read, or verify where it is kept")
    return Check(name, True, f"{len(then)} files of {shown} have the recorded sha256 "
                 f"(tree {item['treeDigest'][:19]}…)")
