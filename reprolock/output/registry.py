"""``registry:HOST/REPO:TAG``: push through the OCI distribution API.

Blobs the registry has are skipped (HEAD); small ones go up in one PUT, large ones in
chunks (PATCH); the manifest last, and the digest the registry reports must be ours.
The artifacts that refer to the image follow it (:mod:`reprolock.output.registry_referrers`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import IO
from urllib.parse import urljoin

import requests

from reprolock.errors import PushError
from reprolock.image.registry import (
    RegistryClient,
    RegistryRef,
    anonymous_session,
    bearer_token,
)
from reprolock.oci.blobstore import BlobStore
from reprolock.oci.media import OCI_MANIFEST
from reprolock.oci.model import Image
from reprolock.output.interface import Output, Progress, Written
from reprolock.output.layout_writer import image_blobs
from reprolock.output.referrers import Referrer
from reprolock.output.registry_referrers import push_referrers

MONOLITHIC_LIMIT = 8 << 20
CHUNK = 8 << 20
_RETRIES = 4


class RegistryOutput(Output):
    def __init__(self, ref: RegistryRef, *, session: requests.Session | None = None,
                 monolithic_limit: int = MONOLITHIC_LIMIT, chunk: int = CHUNK) -> None:
        self.ref = ref
        self.session = session or anonymous_session()
        self.base = f"{ref.scheme}://{ref.host}/v2/{ref.repository}"
        self.monolithic_limit = monolithic_limit
        self.chunk = chunk
        self._token: str | None = None
        self.reader = RegistryClient(ref, session=self.session)  # what is there already
        self.skipped = 0
        self.uploaded = 0

    def write(self, image: Image, blobs: BlobStore, *, tag: str | None,
              progress: Progress, referrers: Sequence[Referrer] = ()) -> Written:
        tag = self.ref.tag or tag or self.default_tag
        for digest in image_blobs(image)[:-1]:  # the manifest is PUT by tag, last
            self.push_blob(blobs, digest, progress)
        manifest = blobs.read(image.manifest_digest)
        response = self.request("PUT", f"{self.base}/manifests/{tag}", data=manifest,
                                 headers={"Content-Type": OCI_MANIFEST}, expect=(201,))
        pushed = response.headers.get("Docker-Content-Digest")
        if pushed and pushed != image.manifest_digest:
            raise PushError(f"registry {self.ref.host} stored the manifest as {pushed}, "
                            f"not {image.manifest_digest}",
                            hint="the registry rewrote the manifest; use another registry")
        attached = ""
        if referrers:
            attached = f"; {len(referrers)} artifacts attached, found through " + \
                push_referrers(self, image, blobs, referrers, progress)
        progress(f"pushed {self.ref.host}/{self.ref.repository}:{tag} "
                 f"({self.uploaded} blobs uploaded, {self.skipped} already there{attached})")
        return Written(f"{self.ref.host}/{self.ref.repository}:{tag}", image.manifest_digest)

    def push_blob(self, blobs: BlobStore, digest: str, progress: Progress) -> None:
        head = self.request("HEAD", f"{self.base}/blobs/{digest}", expect=(200, 404))
        if head.status_code == 200:
            self.skipped += 1
            return
        path = blobs.path(digest)
        size = path.stat().st_size
        start = self.request("POST", f"{self.base}/blobs/uploads/", expect=(202,))
        location = self._location(start)
        with open(path, "rb") as handle:
            if size <= self.monolithic_limit:
                self.request("PUT", _with_digest(location, digest), data=handle.read(),
                              headers={"Content-Type": "application/octet-stream"},
                              expect=(201,))
            else:
                location = self._chunks(location, handle, size, progress, digest)
                self.request("PUT", _with_digest(location, digest), expect=(201,))
        self.uploaded += 1

    def _chunks(self, location: str, handle: IO[bytes], size: int, progress: Progress,
                digest: str) -> str:
        offset = 0
        for chunk in _read_chunks(handle, self.chunk):
            end = offset + len(chunk) - 1
            response = self.request(
                "PATCH", location, data=chunk, expect=(202,),
                headers={"Content-Type": "application/octet-stream",
                         "Content-Range": f"{offset}-{end}", "Content-Length": str(len(chunk))})
            location = self._location(response)
            offset = end + 1
            progress(f"uploading {digest[:19]}… {offset * 100 // size}%")
        return location

    def _location(self, response: requests.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise PushError(f"registry {self.ref.host} gave no upload location")
        return urljoin(response.url, location)

    def request(self, method: str, url: str, *, expect: tuple[int, ...],
                 data: bytes | None = None, headers: dict[str, str] | None = None,
                 ) -> requests.Response:
        for attempt in range(_RETRIES):
            response = self._send(method, url, data, headers or {})
            if response.status_code == 401 and self._token is None:
                self._token = self._fetch_token(response.headers.get("WWW-Authenticate", ""))
                if self._token:
                    response = self._send(method, url, data, headers or {})
            if response.status_code < 500 or attempt == _RETRIES - 1:
                break
            time.sleep(0.25 * 2**attempt)
        if response.status_code not in expect:
            raise PushError(
                f"registry {self.ref.host} answered {response.status_code} to {method} "
                f"{url.split('?')[0].replace(self.base, self.ref.repository)}",
                hint="check that the registry accepts pushes to this repository and that you "
                "are allowed to push")
        return response

    def _send(self, method: str, url: str, data: bytes | None,
              headers: dict[str, str]) -> requests.Response:
        if self._token:
            headers = {**headers, "Authorization": f"Bearer {self._token}"}
        try:
            return self.session.request(method, url, data=data, headers=headers, timeout=300)
        except requests.RequestException as exc:
            raise PushError(f"registry {self.ref.host} is unreachable: {exc.__class__.__name__}",
                            hint="check the host name and that the registry is running") from exc

    def _fetch_token(self, challenge: str) -> str | None:
        return bearer_token(self.session, challenge, host=self.ref.host,
                            scope=f"repository:{self.ref.repository}:pull,push")


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def _read_chunks(handle: IO[bytes], size: int) -> Iterator[bytes]:
    while chunk := handle.read(size):
        yield chunk
