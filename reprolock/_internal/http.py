"""Bounded reads of HTTP bodies: a server may send anything, as much as it likes, as
slowly as it likes.

requests' ``timeout`` bounds each socket read, not the whole body: a page fed one byte
every ten seconds never times out, and ``response.content`` inflates a gzip body of 1 MB
into as many gigabytes as it holds. Every body reprolock reads whole goes through here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

_CHUNK = 1 << 16


def body_chunks(response: requests.Response, *, limit: int, seconds: float | None,
                fail: Callable[[str], Exception]) -> Iterator[bytes]:
    """The body of ``response`` (streamed: ``stream=True``), decoded as its
    Content-Encoding says, in chunks. ``fail(why)`` is raised when the body passes
    ``limit`` bytes, takes more than ``seconds`` in all, or the connection fails; the
    response is closed in every case."""
    deadline = None if seconds is None else time.monotonic() + seconds
    total = 0
    try:
        while True:
            chunk = _read1(response, fail)
            if not chunk:
                return
            total += len(chunk)
            if total > limit:
                raise fail(f"it sent more than {_size(limit)}")
            if deadline is not None and time.monotonic() > deadline:
                raise fail(f"it took more than {seconds:g} s to send it")
            yield chunk
    finally:
        response.close()


def read_body(response: requests.Response, *, limit: int, seconds: float | None,
              fail: Callable[[str], Exception]) -> bytes:
    """The whole body, bounded as :func:`body_chunks` bounds it."""
    return b"".join(body_chunks(response, limit=limit, seconds=seconds, fail=fail))


def _read1(response: requests.Response, fail: Callable[[str], Exception]) -> bytes:
    # read1: what one socket read brings, so the deadline is checked between trickles
    # (read(n) waits for n bytes however long they take)
    try:
        return bytes(response.raw.read1(_CHUNK, decode_content=True))
    except Exception as exc:  # urllib3 and http.client raise many unrelated types
        raise fail(f"reading it failed ({exc.__class__.__name__})") from exc


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"
