"""Which top-level modules a wheel provides, read from its file list.

A wheel's zip directory names every file; the first path component of each (less
``*.dist-info``/``*.data``) is what ``import`` sees. Remote wheels are read with HTTP
range requests (only the zip's tail travels); servers without ranges send the whole file.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from reprolock._internal.files import atomic_write_text
from reprolock._internal.urls import redact, redact_text
from reprolock.errors import ArtifactError
from reprolock.index.simple import DistFile

if TYPE_CHECKING:
    import requests

_EXT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.[\w-]+)*\.(?:py|pyc|so|pyd|pth)$")
_TAIL = 1 << 16


def modules_from_names(names: Iterable[str]) -> tuple[str, ...]:
    found: set[str] = set()
    for name in names:
        first, sep, _ = name.partition("/")
        if first.endswith((".dist-info", ".data")):
            continue
        if sep and first.isidentifier():
            found.add(first)
        elif not sep and (match := _EXT.match(first)) and not first.endswith(".pth"):
            found.add(match.group(1))
    return tuple(sorted(found))


def wheel_modules(
    dist: DistFile, *, cache_dir: Path | None, session: Callable[[], requests.Session]
) -> tuple[str, ...]:
    """``session`` is called only when the wheel must be read over HTTP."""
    cached = cache_dir / "modules" / f"{dist.sha256}.json" if cache_dir and dist.sha256 else None
    if cached and cached.is_file():
        try:
            return tuple(json.loads(cached.read_text()))
        except ValueError:
            cached.unlink(missing_ok=True)
    names = _names(dist, session)
    modules = modules_from_names(names)
    if cached:
        atomic_write_text(cached, json.dumps(list(modules)))
    return modules


def _names(dist: DistFile, session: Callable[[], requests.Session]) -> list[str]:
    import requests

    try:
        if dist.path is not None:
            with zipfile.ZipFile(dist.path) as archive:
                return archive.namelist()
        assert dist.url is not None
        with zipfile.ZipFile(_remote(dist.url, session())) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, requests.RequestException) as exc:
        where = dist.path or redact(dist.url or dist.filename)
        # requests names the URL it was given, credentials included
        why = redact_text(str(exc), [dist.url or ""])
        raise ArtifactError(f"cannot read the file list of wheel {where}: {why}",
                            hint="the index may serve a broken file; try again or report it",
                            ) from exc


def _remote(url: str, session: requests.Session) -> IO[bytes]:
    response = _ok(session.get(url, headers={"Range": f"bytes=-{_TAIL}"}, timeout=60))
    total = _total(response)
    if response.status_code != 206 or total is None:
        return io.BytesIO(response.content)  # no range support: we got the whole file
    return io.BufferedReader(_RangeFile(url, session, total, response.content))


def _ok(response: requests.Response) -> requests.Response:
    """Raise on an HTTP error, naming the status only: raise_for_status names the URL,
    credentials included, and --verbose prints the chained error."""
    if response.status_code >= 400:
        import requests

        raise requests.HTTPError(f"HTTP {response.status_code} {response.reason}")
    return response


def _total(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Range", "")
    _, _, total = value.rpartition("/")
    return int(total) if total.isdigit() else None


class _RangeFile(io.RawIOBase):
    """A seekable view of a remote file that fetches the byte ranges zipfile reads."""

    def __init__(self, url: str, session: requests.Session, size: int, tail: bytes) -> None:
        self.url, self.session, self.size = url, session, size
        self.pos = 0
        self.tail_start = size - len(tail)
        self.tail = tail

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        if self.pos >= self.tail_start:
            data = self.tail[self.pos - self.tail_start : end - self.tail_start]
        else:
            response = _ok(self.session.get(
                self.url, headers={"Range": f"bytes={self.pos}-{end - 1}"}, timeout=60))
            data = response.content
            if end >= self.tail_start:  # keep what we fetched so later seeks stay local
                self.tail = data[: self.tail_start - self.pos] + self.tail
                self.tail_start = self.pos
        self.pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
