"""Every image source resolves the same tiny base to the same config digest and diff_ids.

The expected digests are read from the OCI layout with json and hashlib alone, and
registry digests are checked against what skopeo reports, so no expectation comes from
the code under test.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from reprolock.errors import ImageSourceError
from reprolock.image.interface import ImageSource, ResolvedImage
from reprolock.image.reference import open_source
from reprolock.image.registry import _RETRIES
from reprolock.target import Platform
from tests.support.oci_writer import canonical_bytes, put_blob
from tests.support.services import docker_available, require, require_tool, skopeo_copy

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


# -- what the layout holds, read without reprolock ------------------------------------

@dataclass(frozen=True)
class Truth:
    manifest_digest: str
    config_digest: str
    diff_ids: tuple[str, ...]
    layer_digests: tuple[str, ...]


def _blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def truth(layout: Path, tag: str) -> Truth:
    index = json.loads((layout / "index.json").read_text())
    [entry] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag]
    manifest = json.loads(_blob(layout, entry["digest"]))
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    return Truth(entry["digest"], manifest["config"]["digest"],
                 tuple(config["rootfs"]["diff_ids"]),
                 tuple(layer["digest"] for layer in manifest["layers"]))


def assert_same_image(image: ResolvedImage, expected: Truth) -> None:
    assert image.config_digest == expected.config_digest
    assert image.diff_ids == expected.diff_ids
    assert len(image.layers) == len(expected.diff_ids)


def assert_blobs_match(source: ImageSource, image: ResolvedImage) -> None:
    """Each layer blob the source streams hashes to its descriptor's digest."""
    for layer in image.layers:
        with source.open_blob(layer.digest) as blob:
            assert "sha256:" + hashlib.sha256(blob.read()).hexdigest() == layer.digest


def resolve(reference: str, root: Path, platform: Platform = AMD64) -> tuple[ImageSource,
                                                                                ResolvedImage]:
    source = open_source(reference, root=root)
    return source, source.resolve(platform)


def skopeo(*args: str) -> str:
    binary = require_tool("skopeo")
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.json"
        policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
        proc = subprocess.run([binary, "--policy", str(policy), *args], capture_output=True,
                              text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def skopeo_digest(ref: str) -> str:
    return str(json.loads(skopeo("inspect", "--tls-verify=false", ref))["Digest"])


@pytest.fixture
def layout_copy(tiny_base: Path, tmp_path: Path) -> Path:
    """A private copy of the shared tiny layout that a test may change."""
    return Path(shutil.copytree(tiny_base, tmp_path / "layout"))


def add_index(layout: Path, tag: str, images: dict[str, str]) -> str:
    """Name an image index ``tag`` whose manifests are ``{architecture: existing tag}``."""
    manifests = []
    for arch, source_tag in images.items():
        manifest_digest = truth(layout, source_tag).manifest_digest
        manifests.append({"mediaType": MANIFEST_TYPE, "digest": manifest_digest,
                          "size": len(_blob(layout, manifest_digest)),
                          "platform": {"os": "linux", "architecture": arch}})
    manifests.append({  # what buildx adds beside the images: must never be chosen
        "mediaType": MANIFEST_TYPE, "digest": truth(layout, "tiny").manifest_digest,
        "size": len(_blob(layout, truth(layout, "tiny").manifest_digest)),
        "platform": {"os": "unknown", "architecture": "unknown"}})
    digest, size = put_blob(layout, canonical_bytes(
        {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests}))
    index = json.loads((layout / "index.json").read_text())
    index["manifests"].append({"mediaType": INDEX_TYPE, "digest": digest, "size": size,
                               "annotations": {REF_NAME: tag}})
    (layout / "index.json").write_text(json.dumps(index))
    return digest


# -- oci-layout --------------------------------------------------------------------------

def test_layout_by_tag(tiny_base: Path) -> None:
    expected = truth(tiny_base, "tiny")
    source, image = resolve(f"oci-layout:{tiny_base}:tiny", Path("/"))
    assert_same_image(image, expected)
    assert image.manifest_digest == expected.manifest_digest
    assert image.index_digest is None
    assert not source.pinned
    assert_blobs_match(source, image)
    assert tuple(layer.digest for layer in image.layers) == expected.layer_digests


def test_layout_by_digest_relative_to_root(tiny_base: Path) -> None:
    expected = truth(tiny_base, "tiny")
    source, image = resolve(f"oci-layout:{tiny_base.name}@{expected.manifest_digest}",
                            tiny_base.parent)
    assert source.pinned
    assert_same_image(image, expected)
    assert image.manifest_digest == expected.manifest_digest


def test_layout_by_digest_with_two_tags_of_one_image(layout_copy: Path) -> None:
    """Two tags naming one image: by digest that is one image, not an ambiguity (the
    'pin your base' advice for an oci-layout: base is its digest)."""
    expected = truth(layout_copy, "tiny")
    index = json.loads((layout_copy / "index.json").read_text())
    entry = next(m for m in index["manifests"]
                 if m.get("annotations", {}).get(REF_NAME) == "tiny")
    index["manifests"].append({**entry, "annotations": {REF_NAME: "latest"}})
    (layout_copy / "index.json").write_text(json.dumps(index))
    _, image = resolve(f"oci-layout:{layout_copy}@{expected.manifest_digest}", Path("/"))
    assert image.manifest_digest == expected.manifest_digest


def test_layout_tags_are_different_images(tiny_base: Path) -> None:
    _, tiny = resolve(f"oci-layout:{tiny_base}:tiny", Path("/"))
    _, arm = resolve(f"oci-layout:{tiny_base}:arm", Path("/"), ARM64)
    assert arm.config_digest == truth(tiny_base, "arm").config_digest
    assert arm.config_digest != tiny.config_digest
    assert arm.architecture == "arm64"


def test_layout_missing_tag_lists_tags(tiny_base: Path) -> None:
    with pytest.raises(ImageSourceError, match="no image 'nope'") as caught:
        resolve(f"oci-layout:{tiny_base}:nope", Path("/"))
    for tag in ("tiny", "musl", "arm", "py312"):
        assert tag in caught.value.message


def test_layout_unknown_digest(tiny_base: Path) -> None:
    missing = "sha256:" + "f" * 64
    with pytest.raises(ImageSourceError, match=missing):
        resolve(f"oci-layout:{tiny_base}@{missing}", Path("/"))


def test_layout_with_many_images_needs_a_tag(tiny_base: Path) -> None:
    with pytest.raises(ImageSourceError, match="holds 4 images"):
        resolve(f"oci-layout:{tiny_base}", Path("/"))


@pytest.mark.parametrize("which", ["manifest", "config"])
def test_layout_corrupt_blob_names_its_digest(layout_copy: Path, which: str) -> None:
    expected = truth(layout_copy, "tiny")
    digest = expected.manifest_digest if which == "manifest" else expected.config_digest
    blob = layout_copy / "blobs" / "sha256" / digest.split(":", 1)[1]
    blob.write_bytes(blob.read_bytes().replace(b"}", b" }", 1))
    with pytest.raises(ImageSourceError, match="corrupt") as caught:
        resolve(f"oci-layout:{layout_copy}:tiny", Path("/"))
    assert digest in caught.value.message


def test_layout_missing_blob(layout_copy: Path) -> None:
    config = truth(layout_copy, "tiny").config_digest
    (layout_copy / "blobs" / "sha256" / config.split(":", 1)[1]).unlink()
    with pytest.raises(ImageSourceError, match=config.split(":", 1)[1]):
        resolve(f"oci-layout:{layout_copy}:tiny", Path("/"))


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_a_layout_blob_that_is_no_regular_file_is_refused(layout_copy: Path,
                                                          kind: str) -> None:
    """A FIFO blocked the open for ever; a link to /dev/zero was hashed for ever."""
    config = truth(layout_copy, "tiny").config_digest
    blob = layout_copy / "blobs" / "sha256" / config.split(":", 1)[1]
    blob.unlink()
    if kind == "fifo":
        os.mkfifo(blob)
    else:
        blob.symlink_to(kind)
    with pytest.raises(ImageSourceError, match="is not a regular file"):
        resolve(f"oci-layout:{layout_copy}:tiny", Path("/"))


def test_not_a_layout(tmp_path: Path) -> None:
    (tmp_path / "some-dir").mkdir()
    with pytest.raises(ImageSourceError, match="not an OCI image layout"):
        resolve(f"oci-layout:{tmp_path / 'some-dir'}:tiny", Path("/"))
    (tmp_path / "some-dir" / "index.json").write_text("[1, 2")
    with pytest.raises(ImageSourceError, match="not valid JSON"):
        resolve(f"oci-layout:{tmp_path / 'some-dir'}:tiny", Path("/"))


def test_layout_index_picks_platform(layout_copy: Path) -> None:
    index_digest = add_index(layout_copy, "multi", {"amd64": "tiny", "arm64": "arm"})
    source, amd = resolve(f"oci-layout:{layout_copy}:multi", Path("/"), AMD64)
    _, arm = resolve(f"oci-layout:{layout_copy}:multi", Path("/"), ARM64)
    assert amd.index_digest == arm.index_digest == index_digest
    assert amd.manifest_digest == truth(layout_copy, "tiny").manifest_digest
    assert arm.manifest_digest == truth(layout_copy, "arm").manifest_digest
    assert_same_image(amd, truth(layout_copy, "tiny"))
    assert_same_image(arm, truth(layout_copy, "arm"))
    assert_blobs_match(source, amd)
    pinned = open_source(f"oci-layout:{layout_copy}@{index_digest}", root=Path("/"))
    assert pinned.pinned
    assert pinned.resolve(ARM64).config_digest == arm.config_digest


def test_layout_index_without_the_platform_lists_offers(layout_copy: Path) -> None:
    add_index(layout_copy, "armonly", {"arm64": "arm"})
    with pytest.raises(ImageSourceError, match="no image for linux/amd64") as caught:
        resolve(f"oci-layout:{layout_copy}:armonly", Path("/"), AMD64)
    assert "linux/arm64" in caught.value.message


# -- oci-archive -------------------------------------------------------------------------

def test_oci_archive_from_skopeo(tiny_base: Path, tmp_path: Path) -> None:
    expected = truth(tiny_base, "tiny")
    archive = tmp_path / "tiny.tar"
    skopeo_copy(f"oci:{tiny_base}:tiny", f"oci-archive:{archive}")
    source, image = resolve(f"oci-archive:{archive}", Path("/"))
    assert_same_image(image, expected)
    assert image.manifest_digest == expected.manifest_digest  # skopeo keeps the bytes
    assert not source.pinned
    assert_blobs_match(source, image)
    source.close()
    pinned, again = resolve(f"oci-archive:{archive}@{expected.manifest_digest}", Path("/"))
    assert pinned.pinned
    assert again.config_digest == expected.config_digest
    pinned.close()


def test_oci_archive_from_skopeo_with_tag(tiny_base: Path, tmp_path: Path) -> None:
    archive = tmp_path / "tiny.tar"
    skopeo_copy(f"oci:{tiny_base}:tiny", f"oci-archive:{archive}:v1")
    source, image = resolve(f"oci-archive:{archive}:v1", Path("/"))
    assert_same_image(image, truth(tiny_base, "tiny"))
    source.close()
    with pytest.raises(ImageSourceError, match="v1"):
        resolve(f"oci-archive:{archive}:v2", Path("/"))


@pytest.mark.parametrize("style", ["dot-prefixed", "plain", "no-directories"])
def test_oci_archive_written_with_tarfile(tiny_base: Path, tmp_path: Path, style: str) -> None:
    archive = tmp_path / "layout.tar"
    with tarfile.open(archive, "w") as tar:
        if style == "dot-prefixed":
            tar.add(tiny_base, arcname=".")
        else:
            for path in sorted(tiny_base.rglob("*")):
                if style == "plain" or path.is_file():
                    tar.add(path, arcname=path.relative_to(tiny_base).as_posix(),
                            recursive=False)
    for tag in ("tiny", "musl"):
        source, image = resolve(f"oci-archive:{archive}:{tag}", Path("/"))
        expected = truth(tiny_base, tag)
        assert_same_image(image, expected)
        assert image.manifest_digest == expected.manifest_digest
        assert_blobs_match(source, image)
        source.close()


def test_archive_that_is_not_an_image(tmp_path: Path) -> None:
    archive = tmp_path / "junk.tar"
    (tmp_path / "hello.txt").write_text("hi")
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "hello.txt", arcname="hello.txt")
    with pytest.raises(ImageSourceError, match="neither an OCI archive nor"):
        open_source(f"oci-archive:{archive}", root=Path("/"))
    (tmp_path / "notatar.tar").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ImageSourceError, match="cannot read image archive"):
        open_source(f"oci-archive:{tmp_path / 'notatar.tar'}", root=Path("/"))


# -- docker-archive ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def docker_archive(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = tmp_path_factory.mktemp("docker-archive") / "tiny.tar"
    skopeo_copy(f"oci:{tiny_base}:tiny", f"docker-archive:{archive}:reprolock-test/tiny:1")
    return archive


@pytest.mark.parametrize("name", ["", ":reprolock-test/tiny:1",
                                  ":docker.io/reprolock-test/tiny:1"])
def test_docker_archive(tiny_base: Path, docker_archive: Path, name: str) -> None:
    source, image = resolve(f"docker-archive:{docker_archive}{name}", Path("/"))
    assert_same_image(image, truth(tiny_base, "tiny"))
    assert image.manifest_digest is None  # a docker save tar holds no manifest
    assert image.identity == image.config_digest
    assert not source.pinned
    assert_blobs_match(source, image)
    for layer, diff_id in zip(image.layers, image.diff_ids, strict=True):
        assert layer.digest == diff_id  # layers are stored uncompressed
    source.close()


def test_docker_archive_unknown_name_lists_tags(docker_archive: Path) -> None:
    with pytest.raises(ImageSourceError, match="reprolock-test/tiny:1"):
        resolve(f"docker-archive:{docker_archive}:other:2", Path("/"))


def test_docker_archive_with_shared_layer_links(tiny_base: Path, tmp_path: Path) -> None:
    """docker save writes a layer that two images share once and links the other copy."""
    expected = truth(tiny_base, "tiny")
    config = _blob(tiny_base, expected.config_digest)
    raw = gzip.decompress(_blob(tiny_base, expected.layer_digests[0]))
    archive = tmp_path / "saved.tar"
    manifest = [
        {"Config": "cfg.json", "RepoTags": ["a:1"], "Layers": ["first/layer.tar"]},
        {"Config": "cfg.json", "RepoTags": ["b:1"], "Layers": ["second/layer.tar"]},
    ]
    with tarfile.open(archive, "w") as tar:
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        _add_bytes(tar, "cfg.json", config)
        _add_bytes(tar, "first/layer.tar", raw)
        link = tarfile.TarInfo("second/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../first/layer.tar"
        tar.addfile(link)
    source, image = resolve(f"docker-archive:{archive}:b:1", Path("/"))
    assert_same_image(image, expected)
    assert image.layers[0].size == len(raw)
    assert_blobs_match(source, image)
    source.close()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


# -- registry ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pushed(registry: str, tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny base as HOST/tiny:1 and a two-platform index as HOST/multi:1."""
    skopeo_copy(f"oci:{tiny_base}:tiny", f"docker://{registry}/tiny:1")
    layout = Path(shutil.copytree(tiny_base, tmp_path_factory.mktemp("multi") / "layout"))
    add_index(layout, "multi", {"amd64": "tiny", "arm64": "arm"})
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:multi",
           f"docker://{registry}/multi:1")
    return registry


def test_registry_by_tag(pushed: str, tiny_base: Path) -> None:
    expected = truth(tiny_base, "tiny")
    source, image = resolve(f"{pushed}/tiny:1", Path("/"))
    assert not source.pinned
    assert image.manifest_digest == skopeo_digest(f"docker://{pushed}/tiny:1")
    assert image.index_digest is None
    assert_same_image(image, expected)
    assert_blobs_match(source, image)


def test_registry_by_digest(pushed: str, tiny_base: Path) -> None:
    digest = skopeo_digest(f"docker://{pushed}/tiny:1")
    for text in (f"{pushed}/tiny@{digest}", f"registry:{pushed}/tiny@{digest}",
                 f"{pushed}/tiny:1@{digest}"):
        source, image = resolve(text, Path("/"))
        assert source.pinned
        assert image.manifest_digest == digest
        assert_same_image(image, truth(tiny_base, "tiny"))


def test_registry_index_picks_platform(pushed: str, tiny_base: Path) -> None:
    index_digest = skopeo_digest(f"docker://{pushed}/multi:1")
    source, amd = resolve(f"{pushed}/multi:1", Path("/"), AMD64)
    _, arm = resolve(f"{pushed}/multi@{index_digest}", Path("/"), ARM64)
    assert amd.index_digest == arm.index_digest == index_digest
    assert amd.manifest_digest == truth(tiny_base, "tiny").manifest_digest
    assert arm.manifest_digest == truth(tiny_base, "arm").manifest_digest
    assert_same_image(amd, truth(tiny_base, "tiny"))
    assert_same_image(arm, truth(tiny_base, "arm"))
    assert_blobs_match(source, amd)


@pytest.mark.parametrize("path", ["nothere:1", "tiny:nope"])
def test_registry_404(pushed: str, path: str) -> None:
    with pytest.raises(ImageSourceError, match="HTTP 404") as caught:
        resolve(f"{pushed}/{path}", Path("/"))
    assert path.split(":")[0] in caught.value.message
    assert caught.value.hint


def test_registry_unreachable() -> None:
    from tests.support.services import free_port

    with pytest.raises(ImageSourceError, match="unreachable"):
        resolve(f"127.0.0.1:{free_port()}/tiny:1", Path("/"))


class _Proxy(BaseHTTPRequestHandler):
    """Forwards to the real registry; ``gate`` may answer a request itself first."""

    upstream: str
    gate: Callable[[_Proxy], bool]
    seen: list[tuple[str, str | None]]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.gate(self):
            return
        answer = requests.get(f"http://{self.upstream}{self.path}", timeout=30,
                              headers={k: v for k, v in self.headers.items()
                                       if k.lower() in ("accept",)})
        headers = {k: v for k, v in answer.headers.items()
                   if k.lower() in ("content-type", "docker-content-digest")}
        self.reply(answer.status_code, answer.content, headers)

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def proxy(pushed: str) -> Iterator[Callable[[Callable[[_Proxy], bool]], tuple[str, list[Any]]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(gate: Callable[[_Proxy], bool]) -> tuple[str, list[Any]]:
        seen: list[tuple[str, str | None]] = []
        handler = type("Handler", (_Proxy,), {"upstream": pushed, "gate": staticmethod(gate),
                                               "seen": seen})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_registry_bearer_token(proxy: Any, pushed: str, tiny_base: Path) -> None:
    token = "tkn-4711"
    token_requests: list[dict[str, list[str]]] = []

    def gate(req: _Proxy) -> bool:
        url = urlsplit(req.path)
        if url.path == "/token":
            token_requests.append(parse_qs(url.query))
            req.reply(200, json.dumps({"token": token}).encode(),
                      {"Content-Type": "application/json"})
            return True
        if req.headers.get("Authorization") != f"Bearer {token}":
            realm = f"http://{req.headers['Host']}/token"
            challenge = (f'Bearer realm="{realm}",service="reprolock-test",'
                         'scope="repository:tiny:pull"')
            req.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                      {"WWW-Authenticate": challenge, "Content-Type": "application/json"})
            return True
        return False

    host, seen = proxy(gate)
    source, image = resolve(f"{host}/tiny:1", Path("/"))
    assert image.manifest_digest == skopeo_digest(f"docker://{pushed}/tiny:1")
    assert_same_image(image, truth(tiny_base, "tiny"))
    assert_blobs_match(source, image)
    assert token_requests == [{"service": ["reprolock-test"], "scope": ["repository:tiny:pull"]}]
    registry_calls = [auth for path, auth in seen if path.startswith("/v2/")]
    assert registry_calls[0] is None  # the first try is anonymous, answered by 401
    assert all(auth == f"Bearer {token}" for auth in registry_calls[1:])
    assert len(registry_calls) >= 4  # manifest twice, config, layer


def test_registry_token_refused(proxy: Any) -> None:
    def gate(req: _Proxy) -> bool:
        if req.path.startswith("/token"):
            req.reply(403, b"denied")
        else:
            realm = f"http://{req.headers['Host']}/token"
            req.reply(401, b"", {"WWW-Authenticate": f'Bearer realm="{realm}",service="x"'})
        return True

    host, _ = proxy(gate)
    with pytest.raises(ImageSourceError, match="token request failed"):
        resolve(f"{host}/tiny:1", Path("/"))


def test_registry_retries_server_errors(proxy: Any, pushed: str, tiny_base: Path) -> None:
    failures = {"left": 2}

    def gate(req: _Proxy) -> bool:
        if failures["left"]:
            failures["left"] -= 1
            req.reply(503, b"try later")
            return True
        return False

    host, seen = proxy(gate)
    _, image = resolve(f"{host}/tiny:1", Path("/"))
    assert image.manifest_digest == skopeo_digest(f"docker://{pushed}/tiny:1")
    assert_same_image(image, truth(tiny_base, "tiny"))
    assert seen[0][0] == seen[1][0] == seen[2][0]  # the same request, three times


def test_registry_gives_up_after_retries(proxy: Any) -> None:
    def gate(req: _Proxy) -> bool:
        req.reply(502, b"bad gateway")
        return True

    host, seen = proxy(gate)
    with pytest.raises(ImageSourceError, match="HTTP 502"):
        resolve(f"{host}/tiny:1", Path("/"))
    assert len(seen) == _RETRIES


def test_registry_wrong_content_for_digest(proxy: Any, pushed: str) -> None:
    """A registry (or proxy) that sends other bytes than the digest names is caught."""
    digest = skopeo_digest(f"docker://{pushed}/tiny:1")

    def gate(req: _Proxy) -> bool:
        if "/manifests/" in req.path:
            body = requests.get(f"http://{pushed}/v2/tiny/manifests/1", timeout=30,
                                headers={"Accept": MANIFEST_TYPE}).content
            req.reply(200, body.replace(b"}", b" }", 1), {"Content-Type": MANIFEST_TYPE})
            return True
        return False

    host, _ = proxy(gate)
    with pytest.raises(ImageSourceError, match=digest):
        resolve(f"{host}/tiny@{digest}", Path("/"))


# -- docker-daemon -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def daemon_image(tiny_base: Path) -> Iterator[str]:
    require(docker_available(), "no Docker Engine is running")
    name = "reprolock-test/tiny:1"
    skopeo_copy(f"oci:{tiny_base}:tiny", f"docker-daemon:{name}")
    yield name
    import docker

    docker.from_env().images.remove(name, force=True)


def test_docker_daemon(daemon_image: str, tiny_base: Path) -> None:
    import docker

    expected = truth(tiny_base, "tiny")
    source, image = resolve(f"docker-daemon:{daemon_image}", Path("/"))
    try:
        assert_same_image(image, expected)
        assert docker.from_env().images.get(daemon_image).id == expected.config_digest
        assert not source.pinned
        assert image.identity == expected.config_digest  # never pushed: no repo digest
        assert_blobs_match(source, image)
    finally:
        source.close()
    by_id = open_source(f"docker-daemon:{expected.config_digest}", root=Path("/"))
    assert by_id.pinned
    assert by_id.resolve(AMD64).config_digest == expected.config_digest
    by_id.close()


def test_docker_daemon_missing_image() -> None:
    require(docker_available(), "no Docker Engine is running")
    source = open_source("docker-daemon:reprolock-test/not-there:0", root=Path("/"))
    with pytest.raises(ImageSourceError, match="has no image"):
        source.resolve(AMD64)
    source.close()
