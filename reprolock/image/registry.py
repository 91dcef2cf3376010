"""Images in a registry, through the OCI distribution API (anonymous token auth, as
Docker Hub and GHCR do; plain HTTP only for a registry on the loopback address)."""

from __future__ import annotations

import hashlib
import io
import re
import time
from dataclasses import dataclass
from typing import IO, Any, cast

import requests

from reprolock._internal.http import read_body
from reprolock._internal.jsonio import parse_json
from reprolock._internal.urls import redact, redact_text
from reprolock.errors import ImageSourceError
from reprolock.image.interface import (
    MAX_DOCUMENT,
    ImageSource,
    ResolvedImage,
    check_config,
    check_digest,
    load_json,
    parse_manifest,
    select_platform,
)
from reprolock.oci.media import DOCKER_LIST, DOCKER_MANIFEST, INDEX_TYPES, OCI_INDEX, OCI_MANIFEST
from reprolock.target import Platform

DOCKER_HUB = "registry-1.docker.io"
_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_RETRIES = 4
DOCUMENT_SECONDS = 120.0  # a manifest, config or token, whole: not each socket read
_TOKEN_LIMIT = 1 << 20  # tokens are JWTs of a few kilobytes
_TOKEN = re.compile(r"[\x21-\x7e]{1,65536}")  # goes into a header: printable ASCII only


@dataclass(frozen=True)
class RegistryRef:
    host: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def scheme(self) -> str:
        hostname = self.host.rsplit(":", 1)[0] if not self.host.startswith("[") else (
            self.host.split("]")[0] + "]")
        return "http" if hostname in ("localhost", "127.0.0.1", "[::1]") else "https"

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HUB_ALIASES = ("docker.io", "index.docker.io", DOCKER_HUB)


def parse_registry_ref(text: str) -> RegistryRef | None:
    """Parse ``[HOST/]NAME[:TAG][@sha256:...]`` the way docker does; None if malformed."""
    rest, at, digest = text.partition("@")
    if at and not _DIGEST.match(digest):
        return None
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = first, remainder
    else:
        host, path = DOCKER_HUB, rest
    name, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
    if not _NAME.match(name) or (colon and not _TAG.match(tag)):
        return None
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in name:
            name = f"library/{name}"
    return RegistryRef(host, name, tag or (None if digest else "latest"), digest or None)


class RegistryClient:
    def __init__(self, ref: RegistryRef, *, session: requests.Session | None = None) -> None:
        self.ref = ref
        self.base = f"{ref.scheme}://{ref.host}/v2/{ref.repository}"
        self.session = session or anonymous_session()
        self._token: str | None = None

    def get(self, path: str, *, accept: str | None = None, stream: bool = False,
            missing_ok: bool = False) -> requests.Response:
        """``path`` under the repository; with ``missing_ok`` a 404 is returned, not
        raised (the caller asks whether something is there)."""
        return self.get_url(f"{self.base}/{path}", path, accept=accept, stream=stream,
                            missing_ok=missing_ok)

    def get_url(self, url: str, path: str, *, accept: str | None = None,
                stream: bool = False, missing_ok: bool = False) -> requests.Response:
        """Any URL of this registry (a ``Link`` header's next page); ``path`` names it.
        Never another host's: the request carries this registry's token."""
        if not url.startswith(f"{self.ref.scheme}://{self.ref.host}/v2/"):
            raise ImageSourceError(f"registry {self.ref.host} sent a link to {url[:100]!r}, "
                                   "off this registry", hint="the registry is misbehaving")
        headers = {"Accept": accept} if accept else {}
        for attempt in range(_RETRIES):
            response = self._send(url, headers, stream)
            if response.status_code == 401 and self._token is None:
                self._token = self._fetch_token(response.headers.get("WWW-Authenticate", ""))
                response = self._send(url, headers, stream)
            if response.status_code < 500 or attempt == _RETRIES - 1:
                break
            time.sleep(0.25 * 2**attempt)
        if missing_ok and response.status_code == 404:
            response.close()
            return response
        self._raise_for(response, path)
        return response

    def _send(self, url: str, headers: dict[str, str], stream: bool) -> requests.Response:
        if self._token:
            headers = {**headers, "Authorization": f"Bearer {self._token}"}
        try:
            return self.session.get(url, headers=headers, stream=stream, timeout=60)
        except requests.RequestException as exc:
            raise ImageSourceError(
                f"registry {self.ref.host} is unreachable: {exc.__class__.__name__}",
                hint="check the host name and your network, or use an oci-layout: base",
            ) from exc

    def _fetch_token(self, challenge: str) -> str | None:
        return bearer_token(self.session, challenge, host=self.ref.host,
                            scope=f"repository:{self.ref.repository}:pull")


    def _raise_for(self, response: requests.Response, path: str) -> None:
        status = response.status_code
        if status < 400:
            return
        what = f"{self.ref.host}/{self.ref.repository} ({path})"
        if status in (401, 403):
            raise ImageSourceError(f"registry refused access to {what}: HTTP {status}",
                                   hint="the image may be private or the name misspelt")
        if status == 404:
            raise ImageSourceError(f"registry has no {what}: HTTP 404",
                                   hint="check the image name, tag and digest")
        raise ImageSourceError(f"registry error for {what}: HTTP {status}",
                               hint="try again later")

    def manifest(self, reference: str, *, limit: int = MAX_DOCUMENT
                 ) -> tuple[bytes, str, str]:
        found = self.optional_manifest(reference, limit=limit, missing_ok=False)
        assert found is not None
        return found

    def optional_manifest(self, reference: str, *, limit: int = MAX_DOCUMENT,
                          missing_ok: bool = True) -> tuple[bytes, str, str] | None:
        """(bytes, media type, digest) of a manifest or index, at most ``limit`` bytes and
        checked against a digest reference; None if the registry has none there."""
        response = self.get(f"manifests/{reference}", accept=_ACCEPT, stream=True,
                            missing_ok=missing_ok)
        if response.status_code == 404:
            return None
        data = self.document(response, f"manifest {reference}", limit=limit)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise ImageSourceError(f"registry {self.ref.host} sent a manifest whose digest "
                                   f"{digest} is not the requested {reference}")
        media = response.headers.get("Content-Type", "").split(";")[0]
        return data, media, digest

    def blob(self, digest: str) -> bytes:
        """A small blob (a config), read whole and checked against its digest."""
        check_digest(digest, where=f"blob of {self.ref}")
        data = self.document(self.get(f"blobs/{digest}", stream=True), f"blob {digest}")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ImageSourceError(
                f"registry {self.ref.host} sent blob {digest} with other content")
        return data


    def document(self, response: requests.Response, what: str, *,
                 limit: int = MAX_DOCUMENT) -> bytes:
        """The body of ``response``, at most ``limit`` bytes within DOCUMENT_SECONDS
        (else an ImageSourceError): a registry may send anything for a manifest, as
        slowly as it likes."""
        return read_body(response, limit=limit, seconds=DOCUMENT_SECONDS,
                         fail=lambda why: ImageSourceError(
                             f"registry {self.ref.host}: {what} of {self.ref} was not read: "
                             f"{why}", hint="check the image reference; the registry may be "
                             "misbehaving: try again later"))


class RegistrySource(ImageSource):
    def __init__(self, reference: str, ref: RegistryRef) -> None:
        super().__init__(reference)
        self.ref = ref
        self.client = RegistryClient(ref)

    @property
    def pinned(self) -> bool:
        return self.ref.digest is not None

    def resolve(self, platform: Platform) -> ResolvedImage:
        data, media, digest = self.client.manifest(self.ref.digest or self.ref.tag or "latest")
        doc = load_json(data, what=f"manifest of {self.ref}")
        media = str(doc.get("mediaType") or media)
        index_digest = None
        if media in INDEX_TYPES or "manifests" in doc:
            index_digest = digest
            desc = select_platform(doc, platform, where=str(self.ref))
            data, media, digest = self.client.manifest(desc.digest)
            doc = load_json(data, what=f"manifest {desc.digest} of {self.ref}")
        config_desc, layers = parse_manifest(doc, where=f"manifest {digest} of {self.ref}")
        where = f"image config {config_desc.digest} of {self.ref}"
        config = load_json(self.client.blob(config_desc.digest), what=where)
        return ResolvedImage(
            reference=self.reference,
            index_digest=index_digest,
            manifest_digest=digest,
            config_digest=config_desc.digest,
            config=check_config(config, where=where, layers=len(layers)),
            layers=layers,
        )

    def open_blob(self, digest: str) -> IO[bytes]:
        check_digest(digest, where=f"blob of {self.ref}")
        response = self.client.get(f"blobs/{digest}", stream=True)
        raw: Any = response.raw
        raw.decode_content = True
        return cast(IO[bytes], _Body(response, f"registry {self.ref.host}: blob {digest} of "
                                           f"{self.ref}"))


class _Body(io.RawIOBase):
    """A blob's HTTP body; a connection lost half way is an ImageSourceError, not a
    traceback (the caller hashes the bytes and bounds how many it reads)."""

    def __init__(self, response: requests.Response, what: str) -> None:
        self._response = response
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._response.raw.read(len(buffer))
        except Exception as exc:  # urllib3 and requests raise many unrelated types
            raise ImageSourceError(f"{self._what}: reading failed: {exc.__class__.__name__}",
                                   hint="try again later") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._response.close()
        super().close()


class _Anonymous(requests.Session):
    """Sends no credentials of its own: requests takes them from ~/.netrc for the
    registry, for whatever token realm the registry names and for any host a redirect
    leads to. Proxies and CA settings still come from the environment."""

    def __init__(self) -> None:
        super().__init__()
        self.auth = _no_auth  # a session auth: requests then never looks in ~/.netrc

    def rebuild_auth(self, prepared_request: requests.PreparedRequest,
                     response: requests.Response) -> None:
        # as requests strips a header on a redirect to another host, without its netrc
        original = response.request.url
        if "Authorization" in prepared_request.headers and original is not None and \
                self.should_strip_auth(original, prepared_request.url or ""):  # type: ignore[no-untyped-call]
            del prepared_request.headers["Authorization"]


def anonymous_session() -> requests.Session:
    return _Anonymous()


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def bearer_token(session: requests.Session, challenge: str, *, host: str,
                 scope: str) -> str | None:
    """Answer a ``WWW-Authenticate: Bearer realm=...`` challenge anonymously."""
    if not challenge.lower().startswith("bearer"):
        return None
    params = dict(_CHALLENGE.findall(challenge))
    realm = params.pop("realm", None)
    if not realm:
        return None
    params.setdefault("scope", scope)

    def failed(why: str) -> ImageSourceError:
        # requests names the URL, and a realm may carry user information
        return ImageSourceError(f"registry {host}: anonymous token request failed: "
                                f"{redact_text(why, [realm])} (realm {redact(realm)})",
                                hint="the image may be private")

    try:
        answer = session.get(realm, params=params, timeout=60, stream=True)
    except requests.RequestException as exc:
        raise failed(exc.__class__.__name__) from exc
    if answer.status_code >= 400:
        answer.close()
        raise failed(f"HTTP {answer.status_code}")
    body = parse_json(read_body(answer, limit=_TOKEN_LIMIT, seconds=DOCUMENT_SECONDS,
                                fail=failed), source=f"the token from {redact(realm)}",
                      error=ImageSourceError, hint="the registry is misbehaving")
    token = body.get("token") or body.get("access_token")
    if token is not None and not (isinstance(token, str) and _TOKEN.fullmatch(token)):
        raise failed("the token is not a plain string")
    return token or None
