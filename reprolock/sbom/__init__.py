"""The SBOM boundary: a software bill of materials of the environment image.

    >>> from reprolock.sbom.syft import SyftGenerator
    >>> sbom = SyftGenerator().generate(layout, name="env", image_digest=digest,
    ...                                 created="1980-01-01T00:00:00Z")  # doctest: +SKIP
"""
