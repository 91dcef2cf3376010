"""A registry's answers are bounded and its token realm gets nothing it should not (an
adversarial pass on base images: a 1.5 GB token took 6 GB; ~/.netrc's password went to
the registry and to the realm it named; a token that was a JSON list was an internal
error; a manifest fed a byte at a time never ended)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from reprolock.errors import ImageSourceError
from reprolock.image import registry
from reprolock.image.registry import RegistryClient, parse_registry_ref
from tests.support.hostile_http import Route, hostile_server, send

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType":
                       "application/vnd.oci.image.manifest.v1+json"}).encode()
Server = tuple[str, dict[str, Route], list[tuple[str, str | None]]]


@pytest.fixture
def server() -> Iterator[Server]:
    with hostile_server() as running:
        yield running


def _client(url: str) -> RegistryClient:
    ref = parse_registry_ref(f"{url.removeprefix('http://')}/team/base:1")
    assert ref is not None
    return RegistryClient(ref)


def _guarded(realm: str) -> Route:
    """The manifest, once a request carries the bearer token; else the challenge."""
    def route(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") == "Bearer t0ken":
            send(handler, MANIFEST, headers={"Content-Type":
                                             "application/vnd.oci.image.manifest.v1+json"})
        else:
            send(handler, b"", status=401, headers={
                "WWW-Authenticate": f'Bearer realm="{realm}",service="registry"'})
    return route


def test_netrc_credentials_go_nowhere(server: Server, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url, routes, seen = server
    (tmp_path / ".netrc").write_text("default login alice password NETRC-SECRET\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    routes["/v2/team/base/manifests/1"] = _guarded(f"{url}/token")
    routes["/token"] = lambda h: send(h, b'{"token": "t0ken"}')
    data, _, _ = _client(url).manifest("1")
    assert data == MANIFEST
    assert [auth for _, auth in seen] == [None, None, "Bearer t0ken"]


@pytest.mark.parametrize(("body", "why"), [
    (b"[]", "not a JSON object"),
    (b'"abc"', "not a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "nest"),
    (b'{"token": 5}', "not a plain string"),
    (b'{"token": "a\\r\\nX-Evil: 1"}', "not a plain string"),
    (b'{"token": "' + b"a" * (2 << 20) + b'"}', "more than 1 MiB"),
])
def test_a_malformed_token_answer_is_an_image_source_error(server: Server, body: bytes,
                                                           why: str) -> None:
    url, routes, _ = server
    routes["/v2/team/base/manifests/1"] = _guarded(f"{url}/token")
    routes["/token"] = lambda h: send(h, body)
    with pytest.raises(ImageSourceError, match=why):
        _client(url).manifest("1")


def test_a_realm_s_user_information_is_not_shown(server: Server) -> None:
    url, routes, _ = server
    realm = url.replace("http://", "http://user:s3cretpw@") + "/token"
    routes["/v2/team/base/manifests/1"] = _guarded(realm)
    routes["/token"] = lambda h: send(h, b"", status=500)
    with pytest.raises(ImageSourceError) as caught:
        _client(url).manifest("1")
    assert "HTTP 500" in caught.value.message and "s3cretpw" not in caught.value.message


def test_a_manifest_that_trickles_is_given_up_on_its_deadline(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    url, routes, _ = server
    monkeypatch.setattr(registry, "DOCUMENT_SECONDS", 1.0)

    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(300):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.2)

    routes["/v2/team/base/manifests/1"] = trickle
    started = time.monotonic()
    with pytest.raises(ImageSourceError, match="took more than 1 s"):
        _client(url).manifest("1")
    assert time.monotonic() - started < 30
