#!/usr/bin/env python3
"""The floor for a cold ``reprolock build``: only the work no image builder can skip.

    python bench/floor_s2.py [--compression gzip|zstd] [--level N] [--procs N]
                             [--wheel-deflate] WHEEL_OR_DIR...

For every member of every wheel given (a directory stands for the ``*.whl`` files in it)
this script inflates the member (``zipfile``), hashes it with sha256 (as an installer's
RECORD check does) and compresses the same bytes with the compressor and settings
reprolock uses for layers (``reprolock/oci/compress.py``): gzip = zlib raw deflate at level
5 (memLevel 9, default strategy) plus the CRC-32 of the gzip trailer, zstd = the
``zstandard`` library at level 3, one thread, no checksum, no content size. One
compressed stream per wheel; the compressed bytes are counted and dropped (nothing is
written to disk, no tar headers, no installer logic, no base layers). With
``--wheel-deflate`` (gzip), a deflated member of 64 KiB or more is inflated and hashed
(sha256, CRC-32) but not compressed, as reprolock copies its deflate stream into a gzip
layer.

The work is split across ``--procs`` processes (default: every core) with
``multiprocessing``: each wheel's members are cut into tasks of up to ``--task-mb`` MB
inflated (a bigger member is a task of its own; a member's deflate stream can only be
read in order), one compressed stream per task, biggest task first, each process taking
the next task when it is free. So one big wheel (torch, a CUDA library) does not leave
the other cores idle, as reprolock's block-parallel compression does not.
``--by-wheel`` makes each wheel one task instead (the largest wheel then bounds the time).

Prints one JSON object: wall seconds (from before the pool starts to after it ends),
wheels, members, inflated and compressed bytes. ``bench/bench_s2.py`` times the whole
process from outside as well (interpreter start included).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import time
import zipfile
from pathlib import Path

_CHUNK = 1 << 20
DEFAULT_LEVELS = {"gzip": 5, "zstd": 3}


def _compressor(name: str, level: int):  # type: ignore[no-untyped-def]
    """A function taking bytes (b"" = finish) and returning the compressed bytes made."""
    if name == "gzip":
        import zlib

        zobj = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 9, 0)
        state = {"crc": 0}

        def gzip_step(data: bytes) -> int:
            if not data:
                return len(zobj.flush()) + 8 + 10  # the trailer and the fixed header
            state["crc"] = zlib.crc32(data, state["crc"])
            return len(zobj.compress(data))

        return gzip_step
    import zstandard

    cobj = zstandard.ZstdCompressor(level=level, threads=0, write_checksum=False,
                                    write_content_size=False).compressobj()

    def zstd_step(data: bytes) -> int:
        if not data:
            return len(cobj.flush())
        return len(cobj.compress(data))

    return zstd_step


#: reprolock's WHEEL_DEFLATE_MIN: with --wheel-deflate, a deflated member at least this
#: big is inflated and hashed (sha256 and CRC-32) but not compressed: its own deflate
#: stream is the gzip member
WHEEL_DEFLATE_MIN = 64 << 10


def one_task(task: tuple[str, list[str], str, int, bool]) -> tuple[int, int, int]:
    """Inflate, hash and compress the named members of one wheel (all when none are
    named): (members, inflated bytes, compressed bytes)."""
    import zlib

    path, names, name, level, reuse = task
    step = _compressor(name, level)
    members = inflated = compressed = 0
    with zipfile.ZipFile(path) as archive:
        infos = [archive.getinfo(n) for n in names] if names else archive.infolist()
        for info in infos:
            if info.is_dir():
                continue
            copied = reuse and info.compress_type == zipfile.ZIP_DEFLATED \
                and info.file_size >= WHEEL_DEFLATE_MIN
            sha, crc = hashlib.sha256(), 0
            with archive.open(info) as member:
                while chunk := member.read(_CHUNK):
                    sha.update(chunk)
                    inflated += len(chunk)
                    if copied:
                        crc = zlib.crc32(chunk, crc)
                    else:
                        compressed += step(chunk)
            sha.hexdigest()
            compressed += info.compress_size + 18 if copied else 0
            members += 1
    compressed += step(b"")
    return members, inflated, compressed


def split(wheels: list[Path], limit: int | None) -> list[tuple[int, Path, list[str]]]:
    """(inflated size, wheel, member names) tasks: whole wheels (no limit; an empty name
    list means every member) or runs of members of up to ``limit`` bytes."""
    tasks: list[tuple[int, Path, list[str]]] = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
        if limit is None:
            tasks.append((sum(i.file_size for i in infos), wheel, []))
            continue
        group: list[str] = []
        size = 0
        for info in infos:
            if group and size + info.file_size > limit:
                tasks.append((size, wheel, group))
                group, size = [], 0
            group.append(info.filename)
            size += info.file_size
        if group:
            tasks.append((size, wheel, group))
    return tasks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheels", nargs="+", type=Path)
    parser.add_argument("--compression", choices=("gzip", "zstd"), default="gzip")
    parser.add_argument("--level", type=int, default=None)
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--task-mb", type=float, default=64.0,
                        help="inflated MB of members per task (default 64)")
    parser.add_argument("--by-wheel", action="store_true", help="one task per wheel")
    parser.add_argument("--wheel-deflate", action="store_true",
                        help="gzip: copy the deflate stream of members of 64 KiB and more, "
                        "as reprolock's wheelDeflate layers do (inflated and hashed only)")
    args = parser.parse_args()
    level = DEFAULT_LEVELS[args.compression] if args.level is None else args.level
    wheels: list[Path] = []
    for item in args.wheels:
        wheels += sorted(item.glob("*.whl")) if item.is_dir() else [item]
    if not wheels:
        parser.error("no wheels given")
    start = time.perf_counter()
    sized = split(wheels, None if args.by_wheel else int(args.task_mb * 1e6))
    sized.sort(key=lambda t: t[0], reverse=True)  # biggest first
    reuse = args.wheel_deflate and args.compression == "gzip"
    tasks = [(str(w), names, args.compression, level, reuse) for _, w, names in sized]
    with multiprocessing.get_context("fork").Pool(args.procs) as pool:
        done = list(pool.imap_unordered(one_task, tasks, chunksize=1))
    seconds = time.perf_counter() - start
    print(json.dumps({
        "seconds": seconds, "procs": args.procs, "compression": args.compression,
        "level": level, "wheel_deflate": reuse, "wheels": len(wheels), "tasks": len(tasks),
        "split": "by wheel" if args.by_wheel else f"members, up to {args.task_mb:g} MB a task",
        "wheel_bytes": sum(w.stat().st_size for w in wheels),
        "members": sum(d[0] for d in done), "inflated_bytes": sum(d[1] for d in done),
        "compressed_bytes": sum(d[2] for d in done),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
