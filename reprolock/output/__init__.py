"""The output boundary: where a built image goes (layout, archive, Docker Engine, registry).

    >>> from reprolock.output import parse_output
    >>> target = parse_output("oci:build/image")   # doctest: +SKIP
    >>> target.write(image, blobs, tag="latest")      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from reprolock.errors import ConfigError
from reprolock.output.interface import Output


@dataclass(frozen=True)
class Scheme:
    form: str  # how it is written, for help texts and errors
    make: Callable[[str, str, Path], Output]  # (the whole text, what follows "NAME:", cwd)


def _layout(_text: str, rest: str, cwd: Path) -> Output:
    from reprolock.output.layout_writer import LayoutOutput

    path, tag = _path_and_tag(rest)
    return LayoutOutput(cwd / path, tag)


def _archive(_text: str, rest: str, cwd: Path) -> Output:
    from reprolock.output.archive import ArchiveOutput

    path, tag = _path_and_tag(rest)
    return ArchiveOutput(cwd / path, tag)


def _docker(_text: str, rest: str, _cwd: Path) -> Output:
    from reprolock.output.docker import DockerOutput

    return DockerOutput(rest or None)


def _registry(text: str, rest: str, _cwd: Path) -> Output:
    from reprolock.image.registry import parse_registry_ref
    from reprolock.output.registry import RegistryOutput

    ref = parse_registry_ref(rest)
    if ref is None or ref.digest:
        raise ConfigError(f"--output {text!r} is not a registry reference with a tag",
                          hint="write registry:HOST/REPO:TAG")
    return RegistryOutput(ref)


#: every output, by scheme: the one list that --output's help and parsing read
SCHEMES: Mapping[str, Scheme] = MappingProxyType({
    "oci": Scheme("oci:DIR[:TAG]", _layout),
    "oci-archive": Scheme("oci-archive:FILE[:TAG]", _archive),
    "docker": Scheme("docker[:NAME[:TAG]]", _docker),
    "registry": Scheme("registry:HOST/REPO[:TAG]", _registry),
})
FORMS = ", ".join(scheme.form for scheme in SCHEMES.values())


def output_schemes() -> tuple[str, ...]:
    return tuple(SCHEMES)


def parse_output(text: str, *, cwd: Path | None = None) -> Output:
    name, _, rest = text.partition(":")
    scheme = SCHEMES.get(name)
    if scheme is None:
        raise ConfigError(f"unknown --output {text!r}", hint=f"write one of: {FORMS}")
    return scheme.make(text, rest, cwd or Path())


def _path_and_tag(rest: str) -> tuple[str, str | None]:
    if not rest:
        raise ConfigError("--output needs a path", hint=f"write one of: {FORMS}")
    path, sep, tag = rest.rpartition(":")
    if sep and path and "/" not in tag:
        return path, tag
    return rest, None


__all__ = ["FORMS", "SCHEMES", "Output", "Scheme", "output_schemes", "parse_output"]
