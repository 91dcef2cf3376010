"""The SBOM boundary: a software bill of materials of the environment image.

    >>> from reprolock.sbom.syft import SyftGenerator
    >>> sbom = SyftGenerator().generate(layout, name="env", image_digest=digest,
    ...                                 created="1980-01-01T00:00:00Z")  # doctest: +SKIP
"""

from __future__ import annotations

from reprolock.errors import UsageError
from reprolock.sbom.interface import FORMATS


def sbom_format_names() -> tuple[str, ...]:
    """The SBOM format names, the default (spdx) first: the choices of --sbom-format."""
    return tuple(FORMATS)


def check_sbom_format(name: str, *, option: str = "--sbom-format") -> str:
    """``name`` if it is an SBOM format; a usage error (exit 2) naming the choices if not."""
    if name not in FORMATS:
        raise UsageError.not_known(option, name, sbom_format_names())
    return name
