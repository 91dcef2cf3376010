"""The verify workflow: which check runs for which question. The lock (valid, fresh,
signed, rebuilds to its digests), an image (--image), a run record (--run), or a signed
model's chain back to its run, image and lock (--model); the
running environment (--runtime) is checked by the image's own checker, without a
project."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolock.config import Config
from reprolock.verify.report import Report


@dataclass(frozen=True)
class VerifyOptions:
    key: Path | None = None  # a trusted public key, or a directory of them
    attestation: Path | None = None  # a build's signed provenance
    rebuild: bool = True
    image: str | None = None
    run_record: Path | None = None
    allow_code_drift: bool = False
    outputs: Path | None = None  # with run_record: where the run's outputs are now
    model: Path | None = None  # a signed model directory: its chain back to the lock
    identity: Any = None  # a KeylessIdentity: the keyless bundles checked must be its


def verify_project(config: Config, options: VerifyOptions, *,
                   progress: Callable[[str], None]) -> Report:
    if options.model is not None:
        from reprolock.errors import UsageError
        from reprolock.verify.model import ModelOptions, verify_model_chain

        if options.key is None:
            raise UsageError("--model needs --key: every link of the chain is a signature",
                             hint="pass --key PUBLIC_KEY (the key the run signed with)")
        return verify_model_chain(config, ModelOptions(options.model, options.key,
                                                       run_record=options.run_record),
                                  progress=progress)
    if options.run_record is not None:
        from reprolock.verify.record import verify_record

        return verify_record(config, options.run_record, key=options.key,
                             allow_code_drift=options.allow_code_drift,
                             outputs=options.outputs, identity=options.identity)
    if options.image is not None:
        from reprolock.verify.image import verify_image

        return verify_image(config, options.image, key=options.key,
                            attestation=options.attestation,
                            allow_code_drift=options.allow_code_drift, progress=progress)
    from reprolock.verify import run_checks

    return run_checks(config, key=options.key, attestation=options.attestation,
                      rebuild=options.rebuild, progress=progress, identity=options.identity)


__all__ = ["VerifyOptions", "verify_project"]
