"""``reprolock verify --model DIR --key PUB``: which environment produced this model?

One link at a time, each a check, and the chain stops at the first that breaks (the
links after it are reported as not checked, and fail: nothing behind a broken link is
vouched for):

1. ``model-files``: the files of DIR are the ones the model signature lists;
2. ``model-signature``: DIR/model.sig (OpenSSF Model Signing, checked by the
   ``model-signing`` library) is signed by the key;
3. ``run-statement``: a run record names that model's manifest digest, and its signed
   in-toto statement (DSSE, Sigstore bundle) is that record, signed by the key;
4. ``image``: the image the statement names is in the Docker Engine (by its ID, a
   content digest), built from the statement's lock and code tree;
5. ``lock``: the project's lock is the one the statement names (its digest), and the
   image's configuration is the environment it locks;
6. ``lock-signature``: the lock is signed by the key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolock._internal.files import sha256_file
from reprolock.config import Config
from reprolock.errors import RunRecordError, VerificationError
from reprolock.verify.report import Check, Report

#: run records looked through for the one naming the model, newest first
RECORD_SCAN_LIMIT = 10_000
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ModelOptions:
    directory: Path
    key: Path
    run_record: Path | None = None  # None: the record in .reprolock/runs/ naming the model
    signature: Path | None = None  # None: DIR/model.sig


class _Chain:
    """Links so far; once one breaks, the rest are not checked."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.broken: str | None = None

    def add(self, name: str, link: Callable[[], str]) -> None:
        if self.broken is not None:
            self.checks.append(Check(name, False, f"not checked: the chain is broken at "
                                     f"{self.broken}"))
            return
        try:
            self.checks.append(Check(name, True, link()))
        except VerificationError as exc:
            self.broken = name
            self.checks.append(Check(name, False, exc.message, fix=exc.hint))


def verify_model_chain(config: Config, options: ModelOptions, *,
                       progress: Progress) -> Report:
    from reprolock.signing.keys import load_trusted

    trusted = load_trusted(options.key)  # no key, or not a key: exit 2 before any link
    signature = options.signature or options.directory / "model.sig"
    state: dict[str, Any] = {}
    chain = _Chain()
    for name, link in _model_links(options, signature, state):
        chain.add(name, link)
    chain.add("run-statement", lambda: _statement(config, options, trusted, state))
    chain.add("image", lambda: _image(state["record"], state))
    chain.add("lock", lambda: _lock(config, state["record"], state))
    chain.add("lock-signature", lambda: _lock_signature(config, trusted))
    return Report(tuple(chain.checks))


def _model_links(options: ModelOptions, signature: Path,
                 state: dict[str, Any]) -> Iterator[tuple[str, Callable[[], str]]]:
    """model-files then model-signature; when the signature itself is broken, it comes
    first: files cannot be checked against a manifest nobody vouches for."""
    from reprolock.signing.model import manifest_digest, verify_model

    if not signature.is_file():
        def missing() -> str:
            raise VerificationError(f"no model signature at {signature}",
                                    hint="run with --sign-key, which signs the outputs")
        yield "model-signature", missing
        return
    failure = verify_model(options.directory, signature, options.key)
    digest, files = manifest_digest(signature)
    state["digest"] = digest

    def files_link() -> str:
        if failure is not None and failure.link == "model-files":
            raise VerificationError(f"the files of {options.directory} are not the signed "
                                    f"model: {failure.message}", hint="restore the files "
                                    "the run wrote (or train again)")
        return (f"{files} files of {options.directory} hash to the signed manifest "
                f"{digest[:19]}…")

    def signature_link() -> str:
        if failure is not None and failure.link == "model-signature":
            raise VerificationError(f"{signature.name} does not verify with "
                                    f"{options.key.name}: {failure.message}",
                                    hint="the signature was changed, or made with another "
                                    "key: sign the outputs again (run with --sign-key)")
        return f"{signature.name} is signed by {options.key.name} (model_signing verifies)"

    links = [("model-files", files_link), ("model-signature", signature_link)]
    yield from (reversed(links) if failure and failure.link == "model-signature" else links)


def _statement(config: Config, options: ModelOptions, trusted: list[Any],
               state: dict[str, Any]) -> str:
    """The record naming the model, and its signed statement: that record, by the key."""
    from reprolock.verify.record import _signature

    digest = state["digest"]
    candidates = [options.run_record] if options.run_record else _records(config)
    found = [(p, r) for p, r in _read(candidates) if _names(r, digest)]
    if not found:
        where = options.run_record or config.root / ".reprolock" / "runs"
        raise VerificationError(f"no run record in {where} names the model manifest "
                                f"{digest}", hint="pass the run's record with --run RECORD "
                                "(and verify in the project that ran)")
    errors = []
    for path, record in found:
        try:
            signed = _signature(path, record, trusted)
        except VerificationError as exc:
            errors.append(exc)
            continue
        state["record"] = record
        return (f"{path.name} names the model and its statement is {signed}; image "
                f"{record['image']['id'][:19]}…, lock {record['lock']['digest'][:19]}…, "
                f"code {record['codeTree'][:19]}…")
    raise VerificationError(f"the run statement of {found[0][0].name} does not verify: "
                            f"{errors[0].message}", hint=errors[0].hint)


def _records(config: Config) -> list[Path]:
    runs = config.root / ".reprolock" / "runs"
    if not runs.is_dir():
        return []
    names = sorted((p for p in runs.iterdir() if p.suffix == ".json"
                    and not p.name.endswith((".dsse.json", ".sigstore.json"))), reverse=True)
    return names[:RECORD_SCAN_LIMIT]


def _read(paths: list[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    from reprolock.verify.record import read_record

    for path in paths:
        try:
            yield path, read_record(path)
        except RunRecordError:
            if len(paths) == 1:
                raise  # the record asked for: a broken input, exit 2
            continue  # another record of the directory: it cannot name the model


def _names(record: dict[str, Any], digest: str) -> bool:
    model = record.get("model")
    return isinstance(model, dict) and model.get("manifestDigest") == digest


def _image(record: dict[str, Any], state: dict[str, Any]) -> str:
    """The image the statement names, in the Docker Engine by its ID: content-addressed
    (the digest of its configuration, labels included), so an image of that ID is the
    one that ran; its labels must name the statement's lock and code tree."""
    from reprolock.engine.docker import connect, get_image, image_config
    from reprolock.oci.contract import CODE_LABEL, LOCK_LABEL

    image_id = record["image"]["id"]
    image = get_image(connect(), image_id, error=VerificationError,
                      hint="load the image the run used into this Docker Engine")
    state["image_config"] = image_config(image)
    labels = image.labels or {}
    wrong = [f"{label} {labels.get(label)!r}, not {want!r}" for label, want in (
        (LOCK_LABEL, record["lock"]["digest"]), (CODE_LABEL, record["codeTree"]))
        if labels.get(label) != want]
    if wrong:
        raise VerificationError(f"the image {image_id[:19]}… is not the build of the lock "
                                f"and code the run statement names: {'; '.join(wrong)}",
                                hint="the statement names another image; run again")
    return (f"{image_id[:19]}… is in the Docker Engine, built from the statement's lock "
            "and code tree")


def _lock(config: Config, record: dict[str, Any], state: dict[str, Any]) -> str:
    """The project's lock is the statement's, and the image's configuration (less the
    code) is the environment it locks, as 'run' checked before training."""
    from reprolock.lock.io import read_lock
    from reprolock.workflows.run import config_check

    recorded = record["lock"]["digest"]
    try:
        current = "sha256:" + sha256_file(config.lock_path)
    except OSError as exc:
        raise VerificationError(f"cannot read {config.lockfile}: {exc.strerror or exc}",
                                hint="verify in the project that ran") from None
    if current != recorded:
        raise VerificationError(f"{config.lockfile} ({current[:19]}…) is not the lock the run "
                                f"statement names ({recorded[:19]}…)",
                                hint="check out the lock the run used")
    checked = config_check(read_lock(config.lock_path), state["image_config"], config)
    if not checked["ok"]:
        raise VerificationError(f"{checked['detail']}: {'; '.join(checked['problems'][:5])}",
                                hint="rebuild the image and run again")
    return (f"{config.lockfile} is the lock the run statement names ({current[:19]}…); "
            "the image's configuration is its environment")


def _lock_signature(config: Config, trusted: list[Any]) -> str:
    from reprolock.verify.lockchecks import _signature

    return _signature(config, trusted)


__all__ = ["ModelOptions", "verify_model_chain"]
