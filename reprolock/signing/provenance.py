"""The in-toto Statement v1 with a SLSA provenance v1 predicate that a build signs."""

from __future__ import annotations

from typing import Any

from reprolock import __version__
from reprolock.signing.dsse import STATEMENT_V1

BUILD_TYPE = "https://reprolock.dev/build/v1"
BUILDER_ID = "https://reprolock.dev/builder/local"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"


def statement(*, image_name: str, manifest_digest: str, lock_name: str, lock_digest: str,
              external: dict[str, Any], dependencies: list[dict[str, Any]],
              ) -> dict[str, Any]:
    return {
        "_type": STATEMENT_V1,
        "subject": [
            {"name": image_name, "digest": {"sha256": manifest_digest.removeprefix("sha256:")}},
            {"name": lock_name, "digest": {"sha256": lock_digest.removeprefix("sha256:")}},
        ],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                # no startedOn/finishedOn: the statement is the same for the same build
                "builder": {"id": BUILDER_ID, "version": {"reprolock": __version__}},
            },
        },
    }

