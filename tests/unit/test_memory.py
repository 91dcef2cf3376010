"""Layer-sized buffers are mapped, so freeing them gives the memory back (peak RSS)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import ctypes, sys
    from reprolock._internal.memory import return_large_buffers_to_the_system

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "set":
        assert return_large_buffers_to_the_system()
    first = bytearray(8 << 20)  # freed: glibc would raise its threshold past 8 MiB
    del first
    block = bytearray(4 << 20)
    print(libc.mallinfo2().hblkhd >> 20)  # MiB held in mappings of their own
""")


def mapped_mib(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], check=True,
                         capture_output=True, text=True).stdout
    return int(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_a_block_after_a_larger_free_is_still_mapped() -> None:
    assert mapped_mib("default") < 4, "glibc's dynamic threshold: the probe shows nothing"
    assert mapped_mib("set") >= 4
