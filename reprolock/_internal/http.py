"""Bounded reads of HTTP bodies: a server may send anything, as much as it likes, as
slowly as it likes.

requests' ``timeout`` bounds each socket read, not the whole body: a page fed one byte
every ten seconds never times out, and ``response.content`` inflates a gzip body of 1 MB
into as many gigabytes as it holds. Here the raw bytes are read and counted, decoded in
bounded pieces, and a timer cuts the connection at the deadline: a read can be held
inside http.client or urllib3 for ever (a gzip stream of empty blocks that never yields
a byte, a chunked trailer that never ends), so checking the clock between reads is not
enough. Every body reprolock reads whole goes through here.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

_CHUNK = 1 << 16
#: what requests asks for (Accept-Encoding: gzip, deflate), and no encoding at all
_GZIP = zlib.MAX_WBITS | 16
_DECODERS: dict[str, int] = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": zlib.MAX_WBITS}


def body_chunks(response: requests.Response, *, limit: int, seconds: float | None,
                fail: Callable[[str], Exception]) -> Generator[bytes, None, None]:
    """The body of ``response`` (streamed: ``stream=True``), decoded as its
    Content-Encoding says, in chunks. ``fail(why)`` is raised when the body passes
    ``limit`` bytes (as sent, or decoded), takes more than ``seconds`` in all, or the
    connection fails; the response is closed in every case."""
    expired = threading.Event()
    timer = None if seconds is None else threading.Timer(seconds, _cut, (response, expired))
    late = f"it took more than {seconds:g} s to send it" if seconds is not None else ""
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield from _decoded(_raw_chunks(response, limit, fail, expired, late),
                            _decoder(response, fail), limit, fail)
        if expired.is_set():
            raise fail(late)
    finally:
        if timer is not None:
            timer.cancel()
        response.close()


def read_body(response: requests.Response, *, limit: int, seconds: float | None,
              fail: Callable[[str], Exception]) -> bytes:
    """The whole body, bounded as :func:`body_chunks` bounds it."""
    return b"".join(body_chunks(response, limit=limit, seconds=seconds, fail=fail))


def _raw_chunks(response: requests.Response, limit: int, fail: Callable[[str], Exception],
                expired: threading.Event, late: str) -> Iterator[bytes]:
    total = 0
    while True:
        try:
            # read1: what one socket read brings, as sent (decoded below, in bounds)
            chunk = bytes(response.raw.read1(_CHUNK, decode_content=False))
        except Exception as exc:  # urllib3 and http.client raise many unrelated types
            raise fail(late if expired.is_set() else
                       f"reading it failed ({exc.__class__.__name__})") from exc
        if expired.is_set():
            raise fail(late)
        if not chunk:
            return
        total += len(chunk)
        if total > limit:
            raise fail(f"it sent more than {_size(limit)}")
        yield chunk


def _decoder(response: requests.Response, fail: Callable[[str], Exception],
             ) -> _Inflater | None:
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding not in _DECODERS:
        raise fail(f"it sent the body in the {encoding[:40]!r} encoding, which was not asked "
                   "for")
    return _Inflater(_DECODERS[encoding], fail)


class _Inflater:
    """zlib in pieces of at most _CHUNK: one megabyte of gzip can hold a gigabyte."""

    def __init__(self, wbits: int, fail: Callable[[str], Exception]) -> None:
        self.wbits, self.fail = wbits, fail
        self.zlib = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while data:
                yield self.zlib.decompress(data, _CHUNK)
                data = self.zlib.unconsumed_tail
                if self.zlib.eof and self.zlib.unused_data:  # gzip members one after another
                    data = self.zlib.unused_data
                    self.zlib = zlib.decompressobj(self.wbits)
        except zlib.error as exc:
            raise self.fail(f"its compressed body is corrupt ({exc})") from exc


def _decoded(chunks: Iterator[bytes], decoder: _Inflater | None, limit: int,
             fail: Callable[[str], Exception]) -> Iterator[bytes]:
    """``chunks`` decoded, the total within ``limit``."""
    total = 0
    for chunk in chunks:
        for piece in decoder.feed(chunk) if decoder is not None else (chunk,):
            total += len(piece)
            if total > limit:
                raise fail(f"it sent more than {_size(limit)} once decoded")
            yield piece


def _cut(response: requests.Response, expired: threading.Event) -> None:
    """At the deadline: shut the connection, so that a read held inside http.client
    returns, and the reader sees ``expired``."""
    expired.set()
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: the read ends on its own
            sock.shutdown(socket.SHUT_RDWR)


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"
