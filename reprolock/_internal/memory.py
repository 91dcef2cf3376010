"""Process memory settings for the build."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys

#: glibc's mallopt parameter for the size from which malloc maps memory of its own
_M_MMAP_THRESHOLD = -3
#: Layer blocks are 8 MiB; a buffer of 4 MiB or more is mapped and so unmapped when freed.
#: Not lower: the 1 MiB chunks a layer streams through would each be mapped, faulted in
#: page by page and unmapped (a cold zstd build of S2: 11.6 s of system time at 4 MiB,
#: 15.4 s at 1 MiB; 30.1 s against 32.9 s, the same digest).
MMAP_THRESHOLD = 4 << 20


def return_large_buffers_to_the_system() -> bool:
    """Make glibc map (and so unmap, when freed) every buffer of 4 MiB or more.

    glibc raises its mmap threshold after the first large free, up to 32 MiB, so 8 MiB
    layer blocks came from its heaps instead, one arena per thread, and stayed there after
    they were freed: a cold build of S2 peaked at 323 MB, against 192 MB with the threshold
    fixed (the same digest; docs/benchmarks.md). Setting it turns the dynamic raising off.
    Elsewhere than glibc this does nothing. True if the setting was made.
    """
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return False
