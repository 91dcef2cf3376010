"""Tiny base images for tests: a root file system with just what reprolock probes."""

from __future__ import annotations

from pathlib import Path

from tests.support.oci_writer import add_layer_from_dir, write_image

MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}


def make_rootfs(root: Path, *, python: str = "3.11.2", glibc: str = "2.36",
                arch: str = "amd64", musl: bool = False, dpkg: bool = True) -> Path:
    minor = ".".join(python.split(".")[:2])
    machine = MACHINES[arch]
    (root / "usr/bin").mkdir(parents=True)
    interpreter = root / f"usr/bin/python{minor}"
    interpreter.write_text("#!/bin/sh\n# stand-in interpreter for probing tests\n")
    interpreter.chmod(0o755)
    (root / "usr/bin/python3").symlink_to(f"python{minor}")
    (root / f"usr/lib/python{minor}").mkdir(parents=True)
    (root / f"usr/lib/python{minor}/os.py").write_text("# stdlib\n")
    if musl:
        (root / "lib").mkdir()
        (root / f"lib/ld-musl-{machine}.so.1").write_bytes(b"\x7fELF musl")
        (root / "lib/apk/db").mkdir(parents=True)
        (root / "lib/apk/db/installed").write_text(f"P:musl\nV:{glibc}.4-r0\n\n")
        return root
    libdir = root / f"lib/{machine}-linux-gnu"
    libdir.mkdir(parents=True)
    (libdir / "libc.so.6").write_bytes(
        b"\x7fELF...GNU C Library (Debian GLIBC) stable release version " + glibc.encode()
        + b".\n")
    if dpkg:
        (root / "var/lib/dpkg").mkdir(parents=True)
        (root / "var/lib/dpkg/status").write_text(
            "Package: libc6\nStatus: install ok installed\nVersion: "
            f"{glibc}-9+deb12u4\n\nPackage: python{minor}-minimal\n"
            f"Status: install ok installed\nVersion: {python}-6+deb12u1\n\n")
    return root


def make_base(layout: Path, work: Path, *, tag: str = "tiny", arch: str = "amd64",
              env: list[str] | None = None, **kwargs: object) -> str:
    """Write a one-layer base image into the OCI layout ``layout``; return its digest."""
    root = make_rootfs(work / f"rootfs-{tag}", arch=arch, **kwargs)  # type: ignore[arg-type]
    layer = add_layer_from_dir(layout, root)
    config = {"architecture": arch, "os": "linux", "created": "1980-01-01T00:00:00Z",
              "config": {"Env": env or ["PATH=/usr/bin:/bin"]}}
    return write_image(layout, config=config, layers=[layer], tag=tag)


def make_plain_base(layout: Path, work: Path, *, tag: str = "tiny") -> str:
    """Like make_base, but with an uncompressed layer, so its digest is the same with
    any zlib: what golden tests need."""
    from reprolock.oci.compress import Compressor
    from reprolock.oci.tarball import entries_from_dir, write_layer

    root = make_rootfs(work / f"plain-rootfs-{tag}")
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    tmp = blobs / ".layer"
    layer = write_layer(entries_from_dir(root), tmp, compressor=Compressor("none", 0))
    tmp.rename(blobs / layer.digest.removeprefix("sha256:"))
    config = {"architecture": "amd64", "os": "linux", "created": "1980-01-01T00:00:00Z",
              "config": {"Env": ["PATH=/usr/bin:/bin"]}}
    return write_image(layout, config=config, layers=[layer], tag=tag)  # type: ignore[list-item]
