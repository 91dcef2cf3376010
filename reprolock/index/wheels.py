"""Which top-level modules a wheel provides, read from its file list.

A wheel's zip directory names every file; the first path component of each (less
``*.dist-info``/``*.data``) is what ``import`` sees. Remote wheels are read with HTTP
range requests (only the zip's tail travels); servers without ranges send the whole file.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from reprolock._internal.files import atomic_write_text
from reprolock._internal.http import body_chunks, read_body
from reprolock._internal.urls import redact, redact_text
from reprolock.errors import ArtifactError
from reprolock.index.simple import DistFile

if TYPE_CHECKING:
    import requests

_EXT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.[\w-]+)*\.(?:py|pyc|so|pyd|pth)$")
_TAIL = 1 << 16
_SPOOL = 16 << 20
_MAX_WHEEL = 16 << 30  # no wheel on PyPI comes near; a bound on a server that never stops
_MAX_RANGE = 256 << 20  # torch's zip directory, the largest known, is a few megabytes
_SECONDS = 120.0  # for one range: a few hundred kilobytes at most
_WHOLE_SECONDS = 1800.0  # a whole wheel, from a server without ranges


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
    # ValueError, EOFError: what zipfile raises beside BadZipFile on a crafted directory
    # (a name that is not UTF-8, a record cut short)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError,
            requests.RequestException) as exc:
        where = dist.path or redact(dist.url or dist.filename)
        # requests names the URL it was given, credentials included
        why = redact_text(str(exc), [dist.url or ""])
        raise ArtifactError(f"cannot read the file list of wheel {where}: {why}",
                            hint="the index may serve a broken file; try again or report it",
                            ) from exc


def _remote(url: str, session: requests.Session) -> IO[bytes]:
    response = _ok(session.get(url, headers={"Range": f"bytes=-{_TAIL}"}, timeout=60,
                               stream=True))
    total = _total(response)
    if response.status_code != 206 or total is None:
        # no range support: the whole file comes, on disk past a few megabytes
        whole = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 - returned
        for chunk in body_chunks(response, limit=_MAX_WHEEL, seconds=_WHOLE_SECONDS,
                                 fail=_failed):
            whole.write(chunk)
        whole.seek(0)
        return cast(IO[bytes], whole)
    tail = read_body(response, limit=_TAIL, seconds=_SECONDS, fail=_failed)
    if len(tail) > total:
        raise _failed(f"it sent {len(tail)} bytes of a file it says has {total}")
    return io.BufferedReader(_RangeFile(url, session, total, tail))


def _failed(why: str) -> OSError:
    # an OSError: _names turns it into the ArtifactError that names the wheel
    return OSError(f"the server misbehaved: {why}")


def _ok(response: requests.Response) -> requests.Response:
    """Raise on an HTTP error, naming the status only: raise_for_status names the URL,
    credentials included, and --verbose prints the chained error."""
    if response.status_code >= 400:
        import requests

        response.close()
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
            data = self._fetch(end)
            if end >= self.tail_start:  # keep what we fetched so later seeks stay local
                self.tail = data[: self.tail_start - self.pos] + self.tail
                self.tail_start = self.pos
        self.pos += len(data)
        return data

    def _fetch(self, end: int) -> bytes:
        """Bytes ``pos`` to ``end`` exactly: a server may answer a range request with the
        whole file (200) or with other bytes than were asked for."""
        response = _ok(self.session.get(self.url, headers={"Range": f"bytes={self.pos}-{end - 1}"},
                                        timeout=60, stream=True))
        wanted = end - self.pos
        if wanted > _MAX_RANGE or response.status_code != 206:
            response.close()
            raise _failed(f"a read of {wanted} bytes is more than a wheel's file list takes"
                          if wanted > _MAX_RANGE else f"it answered a range request with "
                          f"HTTP {response.status_code}, though it answered the first one "
                          "with its range")
        answered = response.headers.get("Content-Range", "")
        data = read_body(response, limit=wanted, seconds=_SECONDS, fail=_failed)
        if len(data) != wanted or not answered.startswith(f"bytes {self.pos}-{end - 1}/"):
            raise _failed(f"it sent {len(data)} bytes ({answered[:60]!r}) for the range "
                          f"{self.pos}-{end - 1} ({wanted} bytes)")
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
