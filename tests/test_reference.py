"""Base image references: which source a string names (no image is opened here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprolock.errors import ImageSourceError
from reprolock.image.reference import BaseRef, open_source, parse_reference
from reprolock.image.registry import DOCKER_HUB, RegistrySource, parse_registry_ref

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"python:3.11-slim@{DIGEST}",
         BaseRef("registry", f"python:3.11-slim@{DIGEST}", "3.11-slim", DIGEST)),
        (f"python@{DIGEST}", BaseRef("registry", f"python@{DIGEST}", None, DIGEST)),
        ("python:3.11", BaseRef("registry", "python:3.11", "3.11", None)),
        ("python", BaseRef("registry", "python", "latest", None)),
        ("localhost:5000/x/y:tag", BaseRef("registry", "localhost:5000/x/y:tag", "tag", None)),
        ("docker:24-dind", BaseRef("registry", "docker:24-dind", "24-dind", None)),
        ("oci-layout:base", BaseRef("oci-layout", "base")),
        ("oci-layout:/abs/base", BaseRef("oci-layout", "/abs/base")),
        ("oci-layout:.reprolock/base:bookworm",
         BaseRef("oci-layout", ".reprolock/base", "bookworm")),
        (f"oci-layout:base@{DIGEST}", BaseRef("oci-layout", "base", None, DIGEST)),
        ("oci-archive:img.tar", BaseRef("oci-archive", "img.tar")),
        ("oci-archive:img.tar:v1", BaseRef("oci-archive", "img.tar", "v1")),
        (f"oci-archive:img.tar@{DIGEST}", BaseRef("oci-archive", "img.tar", None, DIGEST)),
        ("docker-archive:img.tar", BaseRef("docker-archive", "img.tar")),
        ("docker-archive:img.tar:name:tag", BaseRef("docker-archive", "img.tar", "name:tag")),
        ("docker-archive:out/img.tar:org/name:1",
         BaseRef("docker-archive", "out/img.tar", "org/name:1")),
        ("docker-daemon:name:tag", BaseRef("docker-daemon", "name:tag")),
        (f"docker-daemon:name@{DIGEST}", BaseRef("docker-daemon", f"name@{DIGEST}", None, DIGEST)),
        ("registry:127.0.0.1:5000/repo/img:tag",
         BaseRef("registry", "127.0.0.1:5000/repo/img:tag", "tag", None)),
        (f"registry:127.0.0.1:5000/img@{DIGEST}",
         BaseRef("registry", f"127.0.0.1:5000/img@{DIGEST}", None, DIGEST)),
    ],
)
def test_parse_reference(text: str, expected: BaseRef) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("oci:dir", "oci-layout"),
        ("oci:dir:tag", "oci-layout"),
        ("dir:some/path", "oci-layout"),
        ("docker://python:3.11", "registry"),
        ("containers-storage:img", "docker-daemon"),
        ("foo://bar", None),
    ],
)
def test_unknown_schemes(text: str, suggestion: str | None) -> None:
    with pytest.raises(ImageSourceError) as caught:
        parse_reference(text)
    message = caught.value.diagnostics()
    assert "unknown scheme" in message
    if suggestion:
        assert f"did you mean {suggestion}:" in message
    else:
        assert "did you mean" not in message
    assert "oci-layout:DIR" in message  # the hint lists the forms that work


def test_url_form_of_a_known_scheme_says_how_to_write_it() -> None:
    with pytest.raises(ImageSourceError, match="like a URL") as caught:
        parse_reference("oci-layout://base")
    assert "oci-layout:base" in caught.value.diagnostics()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "python:",
        "Python:3.11",
        "python@sha256:abc",
        "python@",
        f"python@sha256:{'A' * 64}",
        "x/y:z:w",
        "python:tag with space",
        "oci-layout:",
        "oci-archive:",
        "docker-daemon:",
        "registry:",
        "oci-layout:base:",
        "oci-layout:base@sha256:1234",
        "registry:not a ref",
        "registry:python:",
        "docker-archive:img.tar:Not Valid",
        "docker-archive::name:tag",
        f"docker-archive:img.tar@{DIGEST}",
    ],
)
def test_malformed_references(text: str) -> None:
    with pytest.raises(ImageSourceError) as caught:
        parse_reference(text)
    assert caught.value.hint  # every refusal says what to write instead


def test_registry_refs_normalize_docker_hub() -> None:
    short = parse_registry_ref("python:3.11")
    assert short is not None
    assert (short.host, short.repository, short.tag) == (DOCKER_HUB, "library/python", "3.11")
    for alias in ("docker.io/python:3.11", "docker.io/library/python:3.11",
                  "index.docker.io/library/python:3.11"):
        assert parse_registry_ref(alias) == short, alias
    org = parse_registry_ref("docker.io/org/img:1")
    assert org is not None and org.repository == "org/img"


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("127.0.0.1:5000/x:1", "http"),
        ("localhost:5000/x:1", "http"),
        ("localhost/x:1", "http"),
        ("[::1]:5000/x:1", "http"),
        ("ghcr.io/x/y:1", "https"),
        ("example.com:5000/x:1", "https"),
        ("python:3.11", "https"),
    ],
)
def test_plain_http_only_on_loopback(text: str, scheme: str) -> None:
    ref = parse_registry_ref(text)
    assert ref is not None
    assert ref.scheme == scheme


def test_registry_pinned_only_with_digest(tmp_path: Path) -> None:
    by_tag = open_source("127.0.0.1:5000/x:1", root=tmp_path)
    by_digest = open_source(f"registry:127.0.0.1:5000/x@{DIGEST}", root=tmp_path)
    assert isinstance(by_tag, RegistrySource) and isinstance(by_digest, RegistrySource)
    assert not by_tag.pinned
    assert by_digest.pinned
    assert by_digest.ref.digest == DIGEST and by_digest.ref.host == "127.0.0.1:5000"


def test_missing_paths_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ImageSourceError, match="does not exist"):
        open_source("oci-layout:nowhere:tag", root=tmp_path)
    with pytest.raises(ImageSourceError, match="does not exist"):
        open_source("oci-archive:nowhere.tar", root=tmp_path)
    with pytest.raises(ImageSourceError, match="does not exist"):
        open_source("docker-archive:nowhere.tar:name:tag", root=tmp_path)
