"""The image-source boundary: where a base image comes from.

    >>> from reprolock.image.reference import open_source
    >>> with open_source("oci-layout:base:bookworm", root=Path(".")) as source:  # doctest: +SKIP
    ...     image = source.resolve(Platform.parse("linux/amd64"))
"""
