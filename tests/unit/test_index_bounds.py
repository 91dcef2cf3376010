"""Index pages and wheels read over HTTP are bounded in size and time, whatever the
server sends (issue 13's adversarial pass): a gzip bomb, a page that trickles forever, a
range request answered with the whole file or with other bytes."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from reprolock.errors import ArtifactError, IndexError_
from reprolock.index import simple
from reprolock.index.simple import DistFile, IndexClient
from reprolock.index.wheels import wheel_modules
from reprolock.resolver.interface import IndexSettings
from reprolock.workflows.lock import _check_listed
from tests.support.hostile_http import Route, hostile_server, send

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Route]]]:
    with hostile_server() as (url, routes, _):
        yield url, routes


def _send(handler: BaseHTTPRequestHandler, body: bytes, *, status: int = 200,
          headers: dict[str, str] | None = None) -> None:
    send(handler, body, status=status, headers={"Content-Type": JSON, **(headers or {})})


def _page(filename: str = "alpha-1.0-py3-none-any.whl") -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "files": [
        {"filename": filename, "url": filename, "hashes": {"sha256": "a" * 64}}]}).encode()


def test_a_page_that_inflates_past_the_limit_is_refused(
        server: tuple[str, dict[str, Route]], monkeypatch: pytest.MonkeyPatch) -> None:
    """1 MB of gzip inflated to 1 GB took 4 GB of memory: the page is now cut off."""
    url, routes = server
    monkeypatch.setattr(simple, "PAGE_LIMIT", 1 << 20)
    bomb = gzip.compress(_page()[:-2] + b" " * (8 << 20) + b"]}", compresslevel=9)
    routes["/simple/alpha/"] = lambda h: _send(h, bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(IndexError_, match=r"simple/alpha/ was not read: it sent more than "
                       r"1 MiB") as caught:
        IndexClient(IndexSettings(f"{url}/simple")).project_files("alpha")
    assert caught.value.hint and "misbehaving" in caught.value.hint


def test_a_page_that_trickles_is_given_up_on_its_deadline(
        server: tuple[str, dict[str, Route]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A byte every 10 s held lock for over 17 minutes: requests' timeout is per read."""
    url, routes = server
    monkeypatch.setattr(simple, "PAGE_SECONDS", 1.0)

    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", JSON)
        handler.end_headers()
        for _ in range(300):  # 60 s at most, should the client never give up
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.2)

    routes["/simple/alpha/"] = trickle
    started = time.monotonic()
    with pytest.raises(IndexError_, match=r"it took more than 1 s to send it"):
        IndexClient(IndexSettings(f"{url}/simple")).project_files("alpha")
    assert time.monotonic() - started < 30


def test_a_page_within_the_bounds_is_read(server: tuple[str, dict[str, Route]]) -> None:
    url, routes = server
    routes["/simple/alpha/"] = lambda h: _send(h, gzip.compress(_page()),
                                               headers={"Content-Encoding": "gzip"})
    files = IndexClient(IndexSettings(f"{url}/simple")).project_files("alpha")
    assert [(f.filename, f.url) for f in files] == [
        ("alpha-1.0-py3-none-any.whl", f"{url}/simple/alpha/alpha-1.0-py3-none-any.whl")]


@pytest.mark.parametrize(("charset", "encoding"), [
    ("utf-16", "utf-16"), (None, "utf-8"), ("x-no-such-charset", "utf-8"), ("base64", "utf-8"),
    ("idna", "utf-8"), ("punycode", "utf-8")])
def test_an_html_page_is_decoded_by_its_charset_else_as_utf_8(
        server: tuple[str, dict[str, Route]], charset: str | None, encoding: str) -> None:
    """As uv decodes it; an unknown or non-text charset is UTF-8, not an internal error."""
    url, routes = server
    name = "alpha-1.0-py3-none-any.whl"
    body = f'<a href="{name}#sha256={"b" * 64}">\u00e9</a>'.encode(encoding)
    kind = "text/html" + (f"; charset={charset}" if charset else "")
    routes["/simple/alpha/"] = lambda h: _send(h, body, headers={"Content-Type": kind})
    files = IndexClient(IndexSettings(f"{url}/simple")).project_files("alpha")
    assert [f.sha256 for f in files] == ["b" * 64]


def _wheel() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        # a zip directory larger than the 64 KiB tail read first: the rest takes ranges
        for number in range(1500):
            archive.writestr(f"alpha/{'m' * 60}{number}.py", "")
        archive.writestr("alpha-1.0.dist-info/RECORD", "")
    return out.getvalue()


def _ranged(data: bytes, *, later: str) -> Route:
    """The tail (the first request) as asked; later ranges as ``later`` says."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        asked = handler.headers.get("Range", "")
        if asked.startswith("bytes=-"):
            tail = data[-int(asked[7:]):]
            _send(handler, tail, status=206, headers={
                "Content-Range": f"bytes {len(data) - len(tail)}-{len(data) - 1}/{len(data)}"})
        elif later == "whole":
            _send(handler, data)
        elif later == "short":  # a 206 with one byte less than asked
            start, _, end = asked.removeprefix("bytes=").partition("-")
            _send(handler, data[int(start):int(end)], status=206)
        else:  # "elsewhere": the right length, from another offset
            start, _, end = asked.removeprefix("bytes=").partition("-")
            first, last = int(start) - 1, int(end) - 1
            _send(handler, data[first:last + 1], status=206,
                  headers={"Content-Range": f"bytes {first}-{last}/{len(data)}"})
    return route


@pytest.mark.parametrize(("later", "why"), [
    ("whole", "answered a range request with HTTP 200"),
    ("short", r"sent \d+ bytes \(''\) for the range \d+-\d+"),
    ("elsewhere", r"sent \d+ bytes \('bytes \d+-\d+/\d+'\) for the range")])
def test_a_wheel_server_that_breaks_its_ranges_is_an_artifact_error(
        server: tuple[str, dict[str, Route]], later: str, why: str) -> None:
    """A range answered with the whole file was an internal error in zipfile."""
    url, routes = server
    data = _wheel()
    routes["/alpha-1.0-py3-none-any.whl"] = _ranged(data, later=later)
    dist = DistFile("alpha-1.0-py3-none-any.whl", f"{url}/alpha-1.0-py3-none-any.whl",
                    None, "c" * 64, len(data))
    import requests

    session = requests.Session()
    with pytest.raises(ArtifactError, match=why):
        wheel_modules(dist, cache_dir=None, session=lambda: session)


def test_a_wheel_server_without_ranges_sends_the_whole_file(
        server: tuple[str, dict[str, Route]]) -> None:
    url, routes = server
    data = _wheel()
    routes["/alpha-1.0-py3-none-any.whl"] = lambda h: _send(h, data)
    dist = DistFile("alpha-1.0-py3-none-any.whl", f"{url}/alpha-1.0-py3-none-any.whl",
                    None, "c" * 64, len(data))
    import requests

    session = requests.Session()
    assert wheel_modules(dist, cache_dir=None, session=lambda: session) == ("alpha",)


def test_a_pin_no_file_read_carries_names_the_page_not_a_missing_wheel() -> None:
    """When reprolock's read of a page differs from the resolver's (the page changed, or
    the index answers clients differently), the lock said "no wheels (sdist only)"."""
    from reprolock.resolver.interface import Pin

    client = IndexClient(IndexSettings("https://user:secret@index.example/simple"))
    pin = Pin("alpha", "1.0", ("sha256:" + "a" * 64,), ("-r requirements.in",))
    listed = [DistFile("alpha-1.0-py3-none-any.whl", "https://index.example/a.whl", None,
                       "b" * 64, 1)]
    with pytest.raises(ArtifactError) as caught:
        _check_listed(pin, listed, client)
    text = f"{caught.value.message} {caught.value.hint}"
    assert "https://index.example/simple/alpha/" in text
    assert "sha256:" + "a" * 64 in text and "sha256:" + "b" * 64 in text
    assert "secret" not in text
    _check_listed(pin, [*listed, DistFile("alpha-1.0.tar.gz", "https://index.example/a.tgz",
                                          None, None, None)], client)  # hashed on download


@pytest.mark.parametrize("sent", ["more", "cut"])
def test_an_artifact_download_is_bounded_by_its_locked_size(
        server: tuple[str, dict[str, Route]], tmp_path: Path, sent: str) -> None:
    """A server that never stops filled the disk before the hash was checked; one that
    drops the connection half way was an internal error (urllib3's ProtocolError)."""
    from reprolock.imagebuild.artifacts import ArtifactStore
    from reprolock.lock.model import Artifact

    url, routes = server
    data = b"x" * 100_000

    def serve(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data) * (1 if sent == "more" else 2)))
        handler.end_headers()
        handler.wfile.write(data)

    routes["/a-1.0-py3-none-any.whl"] = serve
    artifact = Artifact("a-1.0-py3-none-any.whl", hashlib.sha256(data).hexdigest(), 1000,
                        url=f"{url}/a-1.0-py3-none-any.whl")
    if sent == "cut":
        artifact = dataclasses.replace(artifact, size=None)
    store = ArtifactStore(tmp_path / "cache", project=tmp_path)
    why = "sent more than the 1000 bytes" if sent == "more" else "failed: "
    with pytest.raises(ArtifactError, match=why):
        store.fetch(artifact, "a")
    assert not list((tmp_path / "cache").rglob("*.whl"))


def _endless(mode: str) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.protocol_version = "HTTP/1.1"
        handler.send_response(200)
        if mode == "trailer":  # a chunked body whose trailer never ends
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            handler.wfile.write(b"1\r\nx\r\n0\r\n")
            until = time.monotonic() + 8  # long past the client's 1 s
            while time.monotonic() < until:
                handler.wfile.write((b"X-Pad: " + b"a" * 1000 + b"\r\n") * 100)
            return
        handler.send_header("Content-Encoding", "gzip")
        handler.end_headers()
        if mode == "empty blocks":  # deflate blocks that never yield a byte
            handler.wfile.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
            for _ in range(2_000):
                handler.wfile.write(b"\x00\x00\x00\xff\xff" * 20_000)
        else:  # a gzip file name, a byte at a time
            handler.wfile.write(b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\xff")
            for _ in range(100):
                handler.wfile.write(b"a")
                handler.wfile.flush()
                time.sleep(0.2)
    return route


@pytest.mark.parametrize(("mode", "why"), [
    ("empty blocks", "it sent more than 1 MiB"),
    ("trickled name", "it took more than 1 s"),
    ("trailer", "it took more than 1 s"),
])
def test_a_body_held_inside_one_read_is_still_cut(server: tuple[str, dict[str, Route]],
                                                  mode: str, why: str) -> None:
    """A review found bodies that kept urllib3's read1 (decoding) or http.client
    (a chunked trailer) busy inside one call, past the size and the deadline checks."""
    import requests

    from reprolock._internal.http import read_body

    url, routes = server
    routes["/x"] = _endless(mode)
    response = requests.get(f"{url}/x", stream=True, timeout=60)
    with pytest.raises(RuntimeError, match=why):
        read_body(response, limit=1 << 20, seconds=1.0, fail=RuntimeError)
