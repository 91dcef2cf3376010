"""Base image references: which source a string names, and opening it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reprolock.errors import ImageSourceError
from reprolock.image.interface import ImageSource

SCHEMES = ("oci-layout", "oci-archive", "docker-archive", "docker-daemon", "registry")
# Schemes other tools use that are easy to write by mistake, with what we call them.
# "docker" is one only as "docker://": "docker:24-dind" is a real image on Docker Hub.
_LOOKALIKES = {"oci": "oci-layout", "dir": "oci-layout",
               "containers-storage": "docker-daemon", "daemon": "docker-daemon"}
_URL_LOOKALIKES = {**_LOOKALIKES, "docker": "registry", "http": "registry",
                   "https": "registry"}
_DIGEST_SUFFIX = re.compile(r"@(sha256:[0-9a-f]{64})$")
_FORMS = ("NAME[:TAG]@sha256:..., NAME:TAG, oci-layout:DIR[:TAG|@DIGEST], oci-archive:FILE, "
          "docker-archive:FILE[:NAME:TAG], docker-daemon:REF, registry:HOST/NAME[:TAG|@DIGEST]")


@dataclass(frozen=True)
class BaseRef:
    scheme: str  # one of SCHEMES
    location: str  # path, daemon image name or registry reference
    tag: str | None = None  # docker-archive: the NAME:TAG the archive calls the image
    digest: str | None = None


def parse_reference(text: str) -> BaseRef:
    """Which source ``text`` names. Raises ImageSourceError for anything malformed."""
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme in SCHEMES:
            raise ImageSourceError(f"base reference {text!r} is written like a URL",
                                   hint=f"write {scheme}:{rest} (no //)")
        raise _unknown(text, scheme, _URL_LOOKALIKES)
    scheme, sep, rest = text.partition(":")
    if sep and scheme in SCHEMES:
        if not rest:
            raise ImageSourceError(f"base reference {text!r} names no image after {scheme}:",
                                   hint=f"write one of: {_FORMS}")
        return _scheme_ref(text, scheme, rest)
    if sep and scheme in _LOOKALIKES:
        raise _unknown(text, scheme, _LOOKALIKES)
    return _registry_ref(text, text)


def _registry_ref(text: str, location: str) -> BaseRef:
    from reprolock.image.registry import parse_registry_ref

    ref = parse_registry_ref(location)
    if ref is None:
        raise ImageSourceError(f"base reference {text!r} is not a valid image reference",
                               hint=f"write one of: {_FORMS}")
    return BaseRef("registry", location, ref.tag, ref.digest)


def _scheme_ref(text: str, scheme: str, rest: str) -> BaseRef:
    if scheme == "registry":
        return _registry_ref(text, rest)
    match = _DIGEST_SUFFIX.search(rest)
    if scheme == "docker-daemon":
        return BaseRef(scheme, rest, None, match.group(1) if match else None)
    if "@sha256:" in rest and not match:
        raise ImageSourceError(f"base reference {text!r} has a malformed digest",
                               hint="a digest is sha256: and 64 lowercase hex digits")
    if scheme == "docker-archive":
        if match:
            raise ImageSourceError(f"base reference {text!r}: a docker-archive has no digests",
                                   hint="write docker-archive:FILE:NAME:TAG, or pin the image "
                                   "by using an oci-archive:FILE@sha256:... base")
        return _docker_archive_ref(text, rest)
    if match:
        return BaseRef(scheme, rest[: match.start()], None, match.group(1))
    path, sep, tag = rest.rpartition(":")
    if sep and path and "/" not in tag:
        if not tag:
            raise ImageSourceError(f"base reference {text!r} ends with an empty tag",
                                   hint=f"write {scheme}:{path} or {scheme}:{path}:TAG")
        return BaseRef(scheme, path, tag, None)
    return BaseRef(scheme, rest, None, None)


def _docker_archive_ref(text: str, rest: str) -> BaseRef:
    """``FILE[:NAME[:TAG]]``, split at the first colon as skopeo does."""
    from reprolock.image.registry import parse_registry_ref

    path, sep, name = rest.partition(":")
    if not sep:
        return BaseRef("docker-archive", path)
    if not path or parse_registry_ref(name) is None or "@" in name:
        raise ImageSourceError(f"base reference {text!r} is not a valid docker-archive reference",
                               hint="write docker-archive:FILE or docker-archive:FILE:NAME:TAG")
    return BaseRef("docker-archive", path, name, None)


def _unknown(text: str, scheme: str, lookalikes: dict[str, str]) -> ImageSourceError:
    instead = lookalikes.get(scheme)
    tip = f" (did you mean {instead}:?)" if instead else ""
    return ImageSourceError(f"base reference {text!r} uses an unknown scheme {scheme!r}{tip}",
                            hint=f"write one of: {_FORMS}")


# --image of 'run' and 'verify': the forms 'build --output' writes, and one rule for a
# bare reference. Both commands are about images 'reprolock build' made, and its
# '--output docker[:NAME:TAG]' puts them in the local Docker Engine: a bare NAME:TAG (or
# an image ID) names an image there. A registry is always named as one (registry:).
# A base in reprolock.toml is another matter: a bare NAME:TAG there is a registry image.
_IMAGE_ALIASES = {"oci": "oci-layout", "docker": "docker-daemon"}
IMAGE_FORMS = ("NAME:TAG or an image ID (in the local Docker Engine, as docker:REF or "
               "docker-daemon:REF), oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], "
               "docker-archive:FILE[:NAME:TAG], registry:HOST/NAME[:TAG|@DIGEST]")


def parse_image_option(text: str) -> BaseRef:
    """Which image ``--image TEXT`` names, for ``run`` and ``verify`` alike: a bare
    reference is an image in the local Docker Engine, a registry needs ``registry:``."""
    if "://" in text:
        scheme = text.partition("://")[0]
        instead = "registry:" if scheme in ("docker", "http", "https") else None
        raise ImageSourceError(
            f"--image {text!r} is written like a URL",
            hint=(f"write {instead}HOST/NAME:TAG (no //)" if instead
                  else f"write one of: {IMAGE_FORMS}"))
    scheme, sep, rest = text.partition(":")
    scheme = _IMAGE_ALIASES.get(scheme, scheme) if sep else scheme
    if not sep or scheme not in SCHEMES:
        if not text.strip():
            raise ImageSourceError("--image names no image", hint=f"write one of: {IMAGE_FORMS}")
        return BaseRef("docker-daemon", text, None, _digest_of(text))
    if not rest:
        raise ImageSourceError(f"--image {text!r} names no image after {scheme}:",
                               hint=f"write one of: {IMAGE_FORMS}")
    try:
        return _scheme_ref(text, scheme, rest)
    except ImageSourceError as exc:  # the same checks as for a base; say what was typed
        raise ImageSourceError(exc.message.replace("base reference", "--image", 1),
                               hint=exc.hint) from None


def _digest_of(name: str) -> str | None:
    match = _DIGEST_SUFFIX.search(name)
    return match.group(1) if match else None


def open_image(text: str, *, root: Path) -> ImageSource:
    """Open the image ``--image TEXT`` names (``parse_image_option``); relative paths are
    taken from ``root``. The source keeps ``text`` as the user wrote it, for messages."""
    return _open(parse_image_option(text), text, root)


def open_source(text: str, *, root: Path) -> ImageSource:
    """Open the source a base reference names; relative paths are taken from ``root``."""
    return _open(parse_reference(text), text, root)


def _open(ref: BaseRef, text: str, root: Path) -> ImageSource:
    if ref.scheme == "oci-layout":
        from reprolock.image.layout_reader import DirFiles, OciLayoutSource

        return OciLayoutSource(text, DirFiles(root / ref.location), tag=ref.tag, digest=ref.digest)
    if ref.scheme in ("oci-archive", "docker-archive"):
        from reprolock.image.layout_reader import open_archive

        return open_archive(text, root / ref.location, tag=ref.tag, digest=ref.digest,
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
