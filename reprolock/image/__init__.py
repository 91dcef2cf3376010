"""The image-source boundary: where a base image comes from.

    >>> from reprolock.image.reference import open_source
    >>> source = open_source("oci-layout:base:bookworm", root=Path("."))  # doctest: +SKIP
    >>> image = source.resolve(Platform.parse("linux/amd64"))           # doctest: +SKIP
"""
