"""Base image references: which source a string names, and opening it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reprolock.errors import ImageSourceError
from reprolock.image.interface import ImageSource

SCHEMES = ("oci-layout", "oci-archive", "docker-archive", "docker-daemon", "registry")
# Schemes other tools use that are easy to write by mistake, with what we call them.
_LOOKALIKES = {"oci": "oci-layout", "docker": "registry", "dir": "oci-layout",
               "containers-storage": "docker-daemon", "daemon": "docker-daemon"}
_DIGEST_SUFFIX = re.compile(r"@(sha256:[0-9a-f]{64})$")
_FORMS = ("NAME[:TAG]@sha256:..., NAME:TAG, oci-layout:DIR[:TAG|@DIGEST], oci-archive:FILE, "
          "docker-archive:FILE, docker-daemon:REF")


@dataclass(frozen=True)
class BaseRef:
    scheme: str  # one of SCHEMES
    location: str  # path, daemon image name or registry reference
    tag: str | None = None
    digest: str | None = None


def parse_reference(text: str) -> BaseRef:
    scheme, sep, rest = text.partition(":")
    if "://" in text:
        raise _unknown(text, text.split("://")[0])
    if sep and scheme in SCHEMES:
        if not rest:
            raise ImageSourceError(f"base reference {text!r} names no image after {scheme}:",
                                   hint=f"write one of: {_FORMS}")
        return _scheme_ref(scheme, rest)
    if sep and scheme in _LOOKALIKES:
        raise _unknown(text, scheme)
    from reprolock.image.registry import parse_registry_ref

    ref = parse_registry_ref(text)
    if ref is None:
        raise ImageSourceError(f"base reference {text!r} is not a valid image reference",
                               hint=f"write one of: {_FORMS}")
    return BaseRef("registry", text, ref.tag, ref.digest)


def _scheme_ref(scheme: str, rest: str) -> BaseRef:
    if scheme in ("docker-daemon", "registry"):
        match = _DIGEST_SUFFIX.search(rest)
        return BaseRef(scheme, rest, None, match.group(1) if match else None)
    match = _DIGEST_SUFFIX.search(rest)
    if match:
        return BaseRef(scheme, rest[: match.start()], None, match.group(1))
    path, sep, tag = rest.rpartition(":")
    if sep and path and "/" not in tag:
        return BaseRef(scheme, path, tag, None)
    return BaseRef(scheme, rest, None, None)


def _unknown(text: str, scheme: str) -> ImageSourceError:
    instead = _LOOKALIKES.get(scheme)
    tip = f" (did you mean {instead}:?)" if instead else ""
    return ImageSourceError(f"base reference {text!r} uses an unknown scheme {scheme!r}{tip}",
                            hint=f"write one of: {_FORMS}")


def open_source(text: str, *, root: Path) -> ImageSource:
    """Open the source a base reference names; relative paths are taken from ``root``."""
    ref = parse_reference(text)
    if ref.scheme == "oci-layout":
        from reprolock.image.layout import DirFiles, OciLayoutSource

        return OciLayoutSource(text, DirFiles(root / ref.location), tag=ref.tag, digest=ref.digest)
    if ref.scheme in ("oci-archive", "docker-archive"):
        from reprolock.image.layout import open_archive

        return open_archive(text, root / ref.location, tag=ref.tag,
                            docker=ref.scheme == "docker-archive")
    if ref.scheme == "docker-daemon":
        from reprolock.image.daemon import DockerDaemonSource

        return DockerDaemonSource(text, ref.location)
    from reprolock.image.registry import RegistrySource, parse_registry_ref

    parsed = parse_registry_ref(ref.location)
    if parsed is None:
        raise ImageSourceError(f"base reference {text!r} is not a valid registry reference",
                               hint=f"write one of: {_FORMS}")
    return RegistrySource(text, parsed)
