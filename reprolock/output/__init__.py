"""The output boundary: where a built image goes (layout, archive, Docker Engine, registry).

    >>> from reprolock.output import parse_output
    >>> target = parse_output("oci:build/image")   # doctest: +SKIP
    >>> target.write(image, blobs, tag="latest")      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from reprolock.errors import ConfigError
from reprolock.output.interface import Output

FORMS = "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker[:NAME[:TAG]], registry:HOST/REPO[:TAG]"


def parse_output(text: str, *, cwd: Path | None = None) -> Output:
    cwd = cwd or Path()
    scheme, _, rest = text.partition(":")
    if scheme == "oci":
        from reprolock.output.layout_writer import LayoutOutput

        path, tag = _path_and_tag(rest)
        return LayoutOutput(cwd / path, tag)
    if scheme == "oci-archive":
        from reprolock.output.archive import ArchiveOutput

        path, tag = _path_and_tag(rest)
        return ArchiveOutput(cwd / path, tag)
    if scheme == "docker":
        from reprolock.output.docker import DockerOutput

        return DockerOutput(rest or None)
    if scheme == "registry":
        from reprolock.image.registry import parse_registry_ref
        from reprolock.output.registry import RegistryOutput

        ref = parse_registry_ref(rest)
        if ref is None or ref.digest:
            raise ConfigError(f"--output {text!r} is not a registry reference with a tag",
                              hint="write registry:HOST/REPO:TAG")
        return RegistryOutput(ref)
    raise ConfigError(f"unknown --output {text!r}", hint=f"write one of: {FORMS}")


def _path_and_tag(rest: str) -> tuple[str, str | None]:
    if not rest:
        raise ConfigError("--output needs a path", hint=f"write one of: {FORMS}")
    path, sep, tag = rest.rpartition(":")
    if sep and path and "/" not in tag:
        return path, tag
    return rest, None


__all__ = ["FORMS", "Output", "parse_output"]
