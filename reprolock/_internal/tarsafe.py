"""Reading tars that may be crafted: a bound on the records tarfile reads whole.

tarfile reads a GNU long name and a pax header into memory in one piece, as long as the
header says it is: a 3 MB gzip layer whose long-name record claims 3 GiB of zeros took
9.5 GB. Real ones hold a path or a few attributes. (A pax record of many digits is also
slow to parse on Pythons without the CVE-2024-6232 fix; the bound keeps each such
record to seconds there.)
"""

from __future__ import annotations

import tarfile
from typing import Any, cast

#: the largest GNU long-name or pax record read; PATH_MAX is 4096
MAX_EXTENDED = 64 << 10
_EXTENDED = frozenset({tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                       tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE})


class _BoundedInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _BoundedInfo:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _EXTENDED and info.size > MAX_EXTENDED:
            # a ReadError: every reader of a tar already turns TarError into its message
            raise tarfile.ReadError(
                f"a {info.size}-byte long-name or pax record (more than {MAX_EXTENDED} "
                "bytes, which no real archive needs)")
        return info


def open_tar(name: str | None = None, mode: str = "r", fileobj: Any = None) -> tarfile.TarFile:
    """``tarfile.open`` for reading, with long-name and pax records bounded."""
    opened: tarfile.TarFile = cast(Any, tarfile.open)(name, mode, fileobj,
                                                      tarinfo=_BoundedInfo)
    return opened
